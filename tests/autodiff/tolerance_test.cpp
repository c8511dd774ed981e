// The suite's comparisons (tests/tolerance.hpp) accept exactly the difference they state:
// the Approx(b).margin(tol) they replace also accepted anything within 1.2e-5 relative.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "autodiff/matrix.hpp"
#include "tolerance.hpp"

using autodiff::Matrix;
using Catch::Matchers::WithinAbs;

TEST_CASE("require_close at 1e-12 rejects a difference of 1e-6", "[tolerance][!shouldfail]") {
    // Catch counts this test as passed only if the REQUIRE inside fails.
    test::require_close(Matrix<double>({{1.0, 2.0}}), Matrix<double>({{1.0, 2.0 + 1e-6}}), 1e-12);
}

TEST_CASE("max_abs_diff is the largest absolute difference; shapes and NaNs make it infinite", "[tolerance]") {
    const Matrix<double> a = {{1.0, 2.0}}, b = {{1.0, 2.0 + 1e-6}};
    CHECK_THAT(test::max_abs_diff(a, b), WithinAbs(1e-6, 1e-15));
    CHECK_FALSE(test::max_abs_diff(a, b) <= 1e-12);
    CHECK(test::max_abs_diff(a, a) == 0.0);
    CHECK(std::isinf(test::max_abs_diff(a, Matrix<double>({{1.0}, {2.0}}))));
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    CHECK(std::isinf(test::max_abs_diff(a, Matrix<double>({{1.0, nan}}))));
    CHECK(test::max_abs_diff(Matrix<double>({{nan, inf}}), Matrix<double>({{nan, inf}})) == 0.0);
    CHECK(std::isinf(test::max_abs_diff(Matrix<double>({{inf}}), Matrix<double>({{-inf}}))));
}

TEST_CASE("WithinAbs is absolute only, where Approx with a margin was not", "[tolerance]") {
    CHECK_THAT(2.0, !WithinAbs(2.0 + 1e-6, 1e-12));
    CHECK_THAT(2.0, WithinAbs(2.0 + 1e-6, 2e-6));
    // What the suite wrote before: a "1e-12" margin that accepts 1e-6 at 2.0 (Catch2 2.13).
    CHECK(2.0 == Approx(2.0 + 1e-6).margin(1e-12));
}
