// The engine's hand-vectorised kernels against the standard library.

#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"
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
    REQUIRE(worst <= 1);
    REQUIRE(y[0] == T(1));
}

}  // namespace

TEST_CASE("exp_nonpositive is within 1 ulp of std::exp", "[kernels]") {
    check_exp<double>(-708.39);
    check_exp<float>(-87.33f);
    std::vector<double> tiny = {-709.0, -1e4, -INFINITY};
    autodiff::kernels::exp_nonpositive(tiny.data(), tiny.size());
    REQUIRE(tiny == std::vector<double>{0, 0, 0});
}

namespace {

// An activation through its op (its vectorised exp) against `exact`, the same function in long
// double with the standard library's: within max_ulp of T over [lowest, highest], where the
// exact value is a normal number (else within a few of the smallest normal: the op may give 0
// for a subnormal), and at the special values. Returns the op's values of `special`.
template <class T, class Op, class Exact>
std::vector<T> check_activation(Op&& op, Exact&& exact, double lowest, double highest, double max_ulp) {
    std::mt19937_64 rng(29);
    std::uniform_real_distribution<double> uniform(lowest, highest);
    const std::vector<T> special = {T(0), T(-0.0), T(1e-30), T(-1e-30), T(lowest), T(highest), T(INFINITY), T(-INFINITY), T(NAN)};
    std::vector<T> x(20000);
    for (T& v : x) v = T(uniform(rng));
    std::uniform_real_distribution<double> small(-1e-3, 1e-3);  // where expm1-type cancellation would show
    for (std::size_t k = 0; k < 2000; ++k) x[special.size() + k] = T(small(rng));
    std::copy(special.begin(), special.end(), x.begin());
    autodiff::Tape<T> tape;
    autodiff::Matrix<T> m = autodiff::Matrix<T>::from_shape({x.size(), std::size_t(1)});
    std::copy(x.begin(), x.end(), m.begin());
    const autodiff::Matrix<T> y = op(tape.constant(m)).value();
    double worst = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const T want = T(exact(static_cast<long double>(x[k])));
        if (std::isnan(x[k]) || std::isnan(want)) {  // silu(-inf) is -inf * 0
            REQUIRE(std::isnan(y(k, 0)));
            continue;
        }
        if (std::abs(want) < std::numeric_limits<T>::min() || y(k, 0) == 0) {
            REQUIRE(std::abs(double(y(k, 0)) - double(want)) <= double(std::numeric_limits<T>::min()) * 4);
            continue;
        }
        REQUIRE(std::signbit(y(k, 0)) == std::signbit(want));
        worst = std::max(worst, ulps(std::abs(y(k, 0)), std::abs(want)));
    }
    INFO("worst error " << worst << " ulp");
    REQUIRE(worst <= max_ulp);
    return {y.begin(), y.begin() + special.size()};
}

long double exact_sigmoid(long double v) { return v >= 0 ? 1 / (1 + std::exp(-v)) : std::exp(v) / (1 + std::exp(v)); }

template <class T>
void check_sigmoid(double lowest, double highest) {
    const std::vector<T> y = check_activation<T>([](const auto& x) { return sigmoid(x); }, exact_sigmoid, lowest, highest, 2);
    REQUIRE(y[0] == T(0.5));
    REQUIRE(y[1] == T(0.5));
    REQUIRE(y[6] == T(1));
    REQUIRE(y[7] == T(0));
}

template <class T>
void check_tanh(double highest) {
    const std::vector<T> y = check_activation<T>([](const auto& x) { return tanh(x); },
                                                 [](long double v) { return std::tanh(v); }, -highest, highest, 3);
    REQUIRE(y[0] == T(0));
    REQUIRE(!std::signbit(y[0]));
    REQUIRE(y[1] == T(0));
    REQUIRE(std::signbit(y[1]));  // tanh(-0) = -0
    REQUIRE(y[2] == T(1e-30));
    REQUIRE(y[6] == T(1));
    REQUIRE(y[7] == T(-1));
}

}  // namespace

TEST_CASE("sigmoid is within 2 ulp of the exact formula, at every magnitude", "[kernels]") {
    check_sigmoid<double>(-745, 40);
    check_sigmoid<float>(-104, 20);
}

TEST_CASE("tanh is within 3 ulp of the exact one, small arguments included", "[kernels]") {
    check_tanh<double>(30);
    check_tanh<float>(12);
}

// silu, elu and softplus by the same kernels (x sigmoid(x); expm1 and exp of min(x, 0);
// log(1 + e^-|x|)). silu only down to where its sigmoid is normal: x e^x is normal a little
// further (to -715 in double), where the op gives -0, as PyTorch's x / (1 + e^-x) does from -709.8.
TEST_CASE("silu is within 3 ulp, elu and softplus within 2 of the exact ones", "[kernels]") {
    auto exact_silu = [](long double v) { return v * exact_sigmoid(v); };
    auto exact_elu = [](long double v) { return v > 0 ? v : std::expm1(v); };
    auto silu_of = [](const auto& x) { return silu(x); };
    auto elu_of = [](const auto& x) { return elu(x); };
    const std::vector<double> silu_double = check_activation<double>(silu_of, exact_silu, -700, 40, 3);
    check_activation<float>(silu_of, exact_silu, -85, 20, 3);
    const std::vector<double> elu_double = check_activation<double>(elu_of, exact_elu, -800, 40, 2);
    check_activation<float>(elu_of, exact_elu, -110, 20, 2);
    auto exact_softplus = [](long double v) { return v > 20 ? v : std::log1p(std::exp(v)); };
    auto softplus_of = [](const auto& x) { return softplus(x, 1.0, 20.0); };
    const std::vector<double> softplus_double = check_activation<double>(softplus_of, exact_softplus, -700, 40, 2);
    check_activation<float>(softplus_of, exact_softplus, -85, 40, 2);
    REQUIRE(softplus_double[0] == std::log(2.0));
    // Where Goldberg's log1p (two roundings) was 2.6 ulp off, found by a review with other seeds.
    autodiff::Tape<double> tape;
    const autodiff::Matrix<double> hard = {{-29.834138238314267, -10.448023720032552}};
    const autodiff::Matrix<double> at_hard = softplus(tape.constant(hard), 1.0, 20.0).value();
    for (std::size_t k = 0; k < 2; ++k) CHECK(ulps(at_hard(0, k), double(exact_softplus(hard(0, k)))) <= 2);
    REQUIRE(softplus_double[7] == 0);
    REQUIRE(silu_double[6] == INFINITY);
    REQUIRE(elu_double[6] == INFINITY);
    REQUIRE(elu_double[7] == -1);
    REQUIRE(std::signbit(elu_double[1]));  // elu(-0) = -0
}

TEST_CASE("exp is within 1 ulp of the exact one, up to the largest finite result", "[kernels]") {
    auto exact_exp = [](long double v) { return std::exp(v); };
    auto exp_of = [](const auto& x) { return exp(x); };
    const std::vector<double> y = check_activation<double>(exp_of, exact_exp, -745, 709.78, 1);
    check_activation<float>(exp_of, exact_exp, -104, 88.72f, 1.05);  // a review found 1.04 in float (1 in 1e7)
    REQUIRE(y[0] == 1);
    REQUIRE(y[6] == INFINITY);
    REQUIRE(y[7] == 0);
    autodiff::Tape<double> tape;
    const autodiff::Matrix<double> edge = {{709.7827128933839, 709.79, 1e-300, -1e-300}};
    const autodiff::Matrix<double> e = exp(tape.constant(edge)).value();
    CHECK(std::isfinite(e(0, 0)));
    CHECK(ulps(e(0, 0), std::exp(709.7827128933839)) <= 1);
    CHECK(e(0, 1) == INFINITY);
    CHECK(e(0, 2) == 1);
    CHECK(e(0, 3) == 1);
}

// exp(x) is a normal number down to -1022 ln 2 = -708.3964 (double) and -126 ln 2 = -87.3365
// (float): the kernels' cut-off at -708.39 and -87.33 gave 0 there, and so did sigmoid, whose
// exact value there is exp(x) to within a part in 1e300 (found by the attack on the kernels).
template <class T>
void check_normal_down_to_cutoff(std::vector<T> x) {
    std::vector<T> y = x;
    autodiff::kernels::exp_nonpositive(y.data(), y.size());
    autodiff::Tape<T> tape;
    autodiff::Matrix<T> m = autodiff::Matrix<T>::from_shape({x.size(), std::size_t(1)});
    std::copy(x.begin(), x.end(), m.begin());
    const autodiff::Matrix<T> s = sigmoid(tape.constant(m)).value();
    for (std::size_t k = 0; k < x.size(); ++k) {
        INFO("x = " << x[k]);
        const T want = T(std::exp(static_cast<long double>(x[k])));
        REQUIRE(want >= std::numeric_limits<T>::min());
        CHECK(ulps(y[k], want) <= 1);
        CHECK(ulps(s(k, 0), want) <= 2);
    }
}

TEST_CASE("exp_nonpositive and sigmoid are not 0 where exp is a normal number", "[kernels]") {
    check_normal_down_to_cutoff<double>({-708.39, -708.393, -708.396, -708.3964185322640});
    check_normal_down_to_cutoff<float>({-87.33f, -87.3300095f, -87.335f, -87.33654f});
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

namespace {

// Positive normal numbers spread over every exponent, and the neighbours of 1 (where
// log's result is smallest and its relative error largest).
template <class T>
std::vector<T> positive_normals(T lowest, T highest) {
    std::mt19937_64 rng(23);
    std::uniform_real_distribution<double> exponent(std::log(double(lowest)), std::log(double(highest)));
    std::uniform_real_distribution<double> near_one(0.5, 2.0);
    std::vector<T> x(40000);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = T(k % 2 ? std::exp(exponent(rng)) : near_one(rng));
    x[0] = 1, x[1] = std::nextafter(T(1), T(2)), x[2] = std::nextafter(T(1), T(0));
    x[3] = std::numeric_limits<T>::min(), x[4] = std::numeric_limits<T>::max();
    return x;
}

// take_logs(y) replaces each element of y by its log.
template <class T, class TakeLogs>
void check_log(TakeLogs&& take_logs) {
    const std::vector<T> x = positive_normals<T>(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
    std::vector<T> y = x;
    take_logs(y);
    double worst = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const T expected = std::log(x[k]);
        // ulps() compares magnitudes of one sign: log changes sign at 1.
        worst = std::max(worst, expected < 0 ? ulps(-y[k], -expected) : ulps(y[k], expected));
    }
    INFO("worst error " << worst << " ulp");
    REQUIRE(worst <= 1);
    REQUIRE(y[0] == T(0));
}

template <class T>
void log_each_of(std::vector<T>& y) {
    autodiff::kernels::log_each(y.data(), y.size());
}

// The log op (its vectorised kernels::log_one).
template <class T>
void log_op_of(std::vector<T>& y) {
    autodiff::Tape<T> tape;
    autodiff::Matrix<T> m = autodiff::Matrix<T>::from_shape({y.size(), std::size_t(1)});
    std::copy(y.begin(), y.end(), m.begin());
    const autodiff::Matrix<T> logs = log(tape.constant(m)).value();
    std::copy(logs.begin(), logs.end(), y.begin());
}

}  // namespace

TEST_CASE("log_each is within 1 ulp of std::log on positive normal numbers", "[kernels]") {
    check_log<double>(log_each_of<double>);
    check_log<float>(log_each_of<float>);
}

TEST_CASE("log_each gives std::log's results for zero, negatives, subnormals, infinities and NaN", "[kernels]") {
    const std::vector<double> bad = {0.0, -0.0, -1.0, 4.9e-324, INFINITY, -INFINITY, NAN};
    std::vector<double> y = bad;
    autodiff::kernels::log_each(y.data(), y.size());
    for (std::size_t k = 0; k < bad.size(); ++k) {
        INFO("log(" << bad[k] << ")");
        const double expected = std::log(bad[k]);
        if (std::isnan(expected)) {
            REQUIRE(std::isnan(y[k]));
        } else {
            REQUIRE(y[k] == expected);
        }
    }
}

TEST_CASE("log is within 1 ulp of the exact one on normal numbers, and std::log's at the edges", "[kernels]") {
    check_log<double>(log_op_of<double>);
    check_log<float>(log_op_of<float>);
    autodiff::Tape<double> tape;
    const autodiff::Matrix<double> edge = {{0.0, INFINITY, 4.9e-324, 1e-310, 1.0}};
    const autodiff::Matrix<double> l = log(tape.constant(edge)).value();
    CHECK(l(0, 0) == -INFINITY);
    CHECK(l(0, 1) == INFINITY);
    CHECK(ulps(-l(0, 2), -std::log(4.9e-324)) <= 2);  // subnormals
    CHECK(ulps(-l(0, 3), -std::log(1e-310)) <= 2);
    CHECK(l(0, 4) == 0);
}

TEST_CASE("log_each's result for one element does not depend on the others", "[kernels]") {
    // A softmax takes the log of each column's sum: one example's NaN logits must not move
    // another example's loss (they did by an ulp when a bad value sent every element to std::log).
    const std::vector<double> healthy = positive_normals<double>(0.25, 16.0);
    std::vector<double> alone = healthy, mixed = healthy;
    for (std::size_t k = 0; k < mixed.size(); k += 7) mixed[k] = k % 2 ? NAN : -1.0;
    autodiff::kernels::log_each(alone.data(), alone.size());
    autodiff::kernels::log_each(mixed.data(), mixed.size());
    for (std::size_t k = 0; k < healthy.size(); ++k) {
        if (k % 7 == 0) continue;
        INFO("log(" << healthy[k] << ") beside bad values");
        REQUIRE(mixed[k] == alone[k]);
    }
}

TEST_CASE("row_sum adds in its eight lanes' order", "[kernels]") {
    // 1e16 + 1 rounds back to 1e16 in lane 0, which -1e16 then cancels: 0 in the documented
    // order (eight lanes, combined in pairs, then the tail), 1 if the sum is reordered (as
    // clang's assume_safety pragma allowed).
    volatile std::size_t size = 32;  // not a constant the compiler could fold the sum with
    std::vector<double> x(size, 0.0);
    x[0] = 1e16, x[8] = 1, x[16] = -1e16;
    REQUIRE(autodiff::kernels::row_sum(x.data(), size) == 0.0);
}

TEST_CASE("softmax_columns gives a column alone the numbers it gives it among others", "[kernels]") {
    // A single column takes a path of its own (one loop over its rows); its probabilities,
    // max and log-sum must be those of the same column in a batch, bit for bit.
    std::mt19937_64 rng(41);
    std::uniform_real_distribution<double> logit(-30.0, 30.0);
    for (const std::size_t rows : {1, 2, 4, 14, 33}) {
        autodiff::Matrix<double> batch(std::array<std::size_t, 2>{rows, 5});
        for (double& v : batch) v = logit(rng);
        autodiff::Matrix<double> p, max, log_sum;
        autodiff::kernels::softmax_columns(batch, p, max, log_sum);
        for (std::size_t j = 0; j < 5; ++j) {
            autodiff::Matrix<double> column(std::array<std::size_t, 2>{rows, 1});
            for (std::size_t i = 0; i < rows; ++i) column(i, 0) = batch(i, j);
            autodiff::Matrix<double> p1, max1, log_sum1;
            autodiff::kernels::softmax_columns(column, p1, max1, log_sum1);
            INFO(rows << " rows, column " << j);
            REQUIRE(max1(0, 0) == max(0, j));
            REQUIRE(log_sum1(0, 0) == log_sum(0, j));
            for (std::size_t i = 0; i < rows; ++i) REQUIRE(p1(i, 0) == p(i, j));
        }
    }
}
