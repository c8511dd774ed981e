// Sizes past 32 bits: ops that keep a size in an int (BLAS) or a 32-bit parameter must refuse
// or handle it, never wrap around to a smaller number and compute the wrong thing silently
// (both found by an attack). The matrices are tens of GiB of untouched virtual memory (only the
// pages written are ever backed); where the machine cannot map them, or under AddressSanitizer
// (which aborts instead of throwing bad_alloc), the test says so and checks nothing.

#include <cstdint>
#include <new>
#include <optional>

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool under_asan = true;
#else
constexpr bool under_asan = false;
#endif
#else
constexpr bool under_asan = false;
#endif

// An uninitialised rows x cols matrix, if it can be mapped.
std::optional<Matrix<float>> untouched(std::size_t rows, std::size_t cols) {
    if (under_asan) {
        WARN("not run under AddressSanitizer: a " << rows << " x " << cols << " matrix");
        return std::nullopt;
    }
    try {
        return Matrix<float>(std::array<std::size_t, 2>{rows, cols});
    } catch (const std::bad_alloc&) {
        WARN("not run: this machine cannot map a " << rows << " x " << cols << " float matrix");
        return std::nullopt;
    }
}

}  // namespace

TEST_CASE("matmul and linear refuse a dimension past BLAS's int instead of wrapping it", "[ops][sizes]") {
    const std::size_t past_int = std::size_t(1) << 31;
    std::optional<Matrix<float>> W = untouched(past_int, 1);
    if (!W) return;
    Tape<float> tape;
    tape.set_memory_limit(0);
    const Var<float> w = tape.constant_ref(*W), a = tape.constant(Matrix<float>{{1.0f}});
    CHECK_THROWS_WITH(matmul(w, a), Contains("matmul: (2147483648x1) @ (1x1): a dimension exceeds BLAS's int sizes"));
    const Var<float> b = tape.constant_ref(*W);
    CHECK_THROWS_WITH(linear(w, a, b), Contains("linear") && Contains("exceeds BLAS's int sizes"));
}

TEST_CASE("slice reads a range that starts past 2^32 where it is", "[ops][sizes]") {
    const std::size_t n = (std::size_t(1) << 32) + 2;
    std::optional<Matrix<float>> x = untouched(1, n);
    if (!x) return;
    x->data()[0] = 5.0f, x->data()[1] = 6.0f;
    x->data()[n - 2] = 9.0f, x->data()[n - 1] = 10.0f;
    Tape<float> tape;
    tape.set_memory_limit(0);
    const Var<float> xs = tape.constant_ref(*x);
    const Var<float> y = slice(xs, 1, n - 2, n);
    CHECK(y.value()(0, 0) == 9.0f);  // 32 bits of n - 2 read column 0
    CHECK(y.value()(0, 1) == 10.0f);
}
