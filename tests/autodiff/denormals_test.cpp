// set_flush_denormals: on, a subnormal result becomes 0 and a subnormal input reads as 0;
// off again, both are kept. The thread's mode is restored at the end.

#include <catch2/catch.hpp>

#include <limits>

#include "autodiff/denormals.hpp"

TEST_CASE("set_flush_denormals flushes subnormal results and inputs on this thread, and stops again", "[denormals]") {
    const bool before = autodiff::flush_denormals();
    volatile float tiny = std::numeric_limits<float>::min();           // the smallest normal float
    volatile float subnormal = std::numeric_limits<float>::denorm_min();
    volatile float half = 0.5f, one = 1.0f;
    if (!autodiff::set_flush_denormals(true)) {
        WARN("no flush-to-zero mode on this CPU: nothing to check");
        return;
    }
    CHECK(autodiff::flush_denormals());
    CHECK(tiny * half == 0.0f);       // would be subnormal: flushed
    CHECK(subnormal * one == 0.0f);   // a subnormal input reads as 0
    autodiff::set_flush_denormals(false);
    CHECK_FALSE(autodiff::flush_denormals());
    CHECK(tiny * half > 0.0f);
    CHECK(subnormal * one == std::numeric_limits<float>::denorm_min());
    autodiff::set_flush_denormals(before);
}
