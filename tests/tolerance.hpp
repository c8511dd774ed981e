#pragma once
// Tolerances that mean what they say, shared by every test program.
//
// Catch2's `Approx(b).margin(tol)` keeps its default relative epsilon (about 1.2e-5) beside
// the margin, so a "1e-12" check written that way accepts a difference of 1e-5. The suite
// compares through max_abs_diff / require_close here, or Catch::Matchers::WithinAbs for
// scalars: |actual - expected| <= tolerance, nothing hidden. tests/lint_tolerances.sh
// refuses an `Approx(` without `.epsilon(0)`.

#include <algorithm>
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

#include "autodiff/matrix.hpp"

namespace test {

/// The largest |a - b| over two arrays of any rank (xtensor or xarray); infinity if their shapes differ or a NaN appears
/// on one side only, so a comparison with any tolerance fails. Equal infinities count as 0.
template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
    if (a.dimension() != b.dimension() || !std::equal(a.shape().begin(), a.shape().end(), b.shape().begin()))
        return std::numeric_limits<double>::infinity();
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k) {
        const double x = double(a.data()[k]), y = double(b.data()[k]);
        if (x == y || (std::isnan(x) && std::isnan(y))) continue;
        const double d = std::abs(x - y);
        worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(worst, d);
    }
    return worst;
}

/// Every element of `actual` within `tolerance` of `expected` (absolute), shapes equal.
template <class T>
void require_close(const autodiff::Matrix<T>& actual, const autodiff::Matrix<T>& expected, double tolerance) {
    INFO("shapes " << autodiff::to_string(autodiff::shape_of(actual)) << " and "
                   << autodiff::to_string(autodiff::shape_of(expected)) << ", tolerance " << tolerance);
    REQUIRE(max_abs_diff(actual, expected) <= tolerance);
}

}  // namespace test
