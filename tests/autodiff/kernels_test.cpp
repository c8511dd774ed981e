// The engine's hand-vectorised kernels against the standard library.

#include <cmath>
#include <random>

#include <catch2/catch.hpp>

#include "autodiff/kernels.hpp"

namespace {

// Distance in units in the last place between a and b (same sign, both finite).
template <class T>
double ulps(T a, T b) {
    if (a == b) return 0;
    const T spacing = std::nextafter(std::max(a, b), T(INFINITY)) - std::max(a, b);
    return std::abs(double(a) - double(b)) / double(spacing);
}

template <class T>
void check_exp(T lowest) {
    std::mt19937_64 rng(17);
    std::uniform_real_distribution<double> uniform(double(lowest), 0.0);
    std::vector<T> x(20000);
    for (T& v : x) v = T(uniform(rng));
    x[0] = 0;
    x[1] = T(-1e-30);
    x[2] = lowest;
    std::vector<T> y = x;
    autodiff::kernels::exp_nonpositive(y.data(), y.size());
    double worst = 0;
    for (std::size_t k = 0; k < x.size(); ++k) worst = std::max(worst, ulps(y[k], T(std::exp(double(x[k])))));
    INFO("worst error " << worst << " ulp");
    REQUIRE(worst <= 2);
    REQUIRE(y[0] == T(1));
}

}  // namespace

TEST_CASE("exp_nonpositive is within 2 ulp of std::exp", "[kernels]") {
    check_exp<double>(-708.39);
    check_exp<float>(-87.33f);
    std::vector<double> tiny = {-709.0, -1e4, -INFINITY};
    autodiff::kernels::exp_nonpositive(tiny.data(), tiny.size());
    REQUIRE(tiny == std::vector<double>{0, 0, 0});
}

TEST_CASE("row_sum adds every element", "[kernels]") {
    for (std::size_t n : {0, 1, 7, 8, 9, 31, 1000}) {
        std::vector<double> x(n);
        for (std::size_t k = 0; k < n; ++k) x[k] = double(k % 13) - 6;
        double expected = 0;
        for (double v : x) expected += v;
        REQUIRE(autodiff::kernels::row_sum(x.data(), n) == expected);
    }
}
