// all_finite and first_non_finite: the check every training step runs on every parameter.

#include <catch2/catch.hpp>

#include <limits>

#include "autodiff/matrix.hpp"

using autodiff::Matrix;

TEMPLATE_TEST_CASE("all_finite finds a NaN or Inf anywhere, and nothing in finite extremes", "[matrix]", float,
                   double) {
    using T = TestType;
    using limits = std::numeric_limits<T>;
    Matrix<T> m({3, 7});
    const T finite[] = {T(0), -T(0), limits::max(), limits::lowest(), limits::min(), limits::denorm_min(), T(1)};
    for (std::size_t k = 0; k < m.size(); ++k) m.data()[k] = finite[k % 7];
    REQUIRE(autodiff::all_finite(m));
    REQUIRE(autodiff::first_non_finite(m).empty());
    for (const T bad : {limits::infinity(), -limits::infinity(), limits::quiet_NaN(), -limits::quiet_NaN()}) {
        for (std::size_t k : {std::size_t(0), std::size_t(8), std::size_t(20)}) {  // first, middle, last
            Matrix<T> with = m;
            with.data()[k] = bad;
            CHECK_FALSE(autodiff::all_finite(with));
            CHECK(autodiff::first_non_finite(with).find("at row " + std::to_string(k / 7) + ", column " +
                                                        std::to_string(k % 7)) != std::string::npos);
        }
    }
}
