// nn::detail::adam_update runs in the version the CPU picks at load time (AVX-512, AVX2 or
// the x86-64 baseline): each must give the plain loop's numbers bit for bit, or a run's
// results would depend on the machine it ran on.

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "nn/adam_update.hpp"

namespace {

// The update as written in nn/adam_update.hpp, one element at a time (this file, like
// adam_update.cpp, is compiled without fused multiply-adds: tests/CMakeLists.txt).
template <class T>
void reference_update(std::size_t n, T* w, T* m, T* v, const T* g, const nn::detail::AdamConstants<T>& c) {
    auto normal_or_zero = [](T x) { return std::fpclassify(x) == FP_SUBNORMAL ? T(0) : x; };
    for (std::size_t k = 0; k < n; ++k) {
        const T gk = g[k] + c.l2 * w[k];
        m[k] = normal_or_zero(c.beta1 * m[k] + (T(1) - c.beta1) * gk);
        v[k] = normal_or_zero(c.beta2 * v[k] + (T(1) - c.beta2) * gk * gk);
        w[k] -= c.shrink * w[k] + c.step_size * m[k] / (std::sqrt(v[k]) / c.root_correction2 + c.epsilon);
    }
}

template <class T>
nn::detail::AdamConstants<T> adam_constants(bool decoupled, T t) {
    return {T(0.9),
            T(0.999),
            T(1e-8),
            decoupled ? T(0) : T(0.01),
            decoupled ? T(1e-3) * T(0.01) : T(0),
            T(1e-3) / (T(1) - std::pow(T(0.9), t)),
            std::sqrt(T(1) - std::pow(T(0.999), t))};
}

}  // namespace

TEMPLATE_TEST_CASE("Adam's update gives the plain loop's numbers bit for bit, whatever vector width runs it",
                   "[optimizers]", float, double) {
    using T = TestType;
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<double> uniform(-1, 1);
    const std::size_t n = 1031;  // not a multiple of any vector width: the tail runs too
    std::vector<T> w(n), m(n), v(n), g(n);
    for (std::size_t k = 0; k < n; ++k) {
        w[k] = T(uniform(rng));
        // every fifth first moment just above the smallest normal number: the update takes
        // it below, where it is stored as 0
        m[k] = k % 5 == 0 ? std::numeric_limits<T>::min() * T(1.5) : T(0.1 * uniform(rng));
        v[k] = T(0.01 * std::abs(uniform(rng)));
        g[k] = k % 17 == 0 ? T(0) : T(uniform(rng) * std::pow(10.0, -int(k % 9)));  // zeros and tiny gradients
    }
    const T t = 3;
    for (bool decoupled : {false, true}) {
        const nn::detail::AdamConstants<T> c = adam_constants(decoupled, t);
        std::vector<T> w1 = w, m1 = m, v1 = v, w2 = w, m2 = m, v2 = v, g1 = g;
        for (int step = 0; step < 3; ++step) {
            REQUIRE(nn::detail::adam_update(n, w1.data(), m1.data(), v1.data(), g1.data(), c, false));
            reference_update(n, w2.data(), m2.data(), v2.data(), g.data(), c);
        }
        std::size_t differing = 0;
        for (std::size_t k = 0; k < n; ++k) differing += (w1[k] != w2[k]) + (m1[k] != m2[k]) + (v1[k] != v2[k]);
        INFO("decoupled: " << decoupled);
        REQUIRE(differing == 0);
        REQUIRE(w1 != w);  // it did update
        REQUIRE(g1 == g);  // and left the gradient alone

        // The same pass zeroing the gradient (Adam::step_and_zero_grad): the same numbers.
        std::vector<T> w3 = w, m3 = m, v3 = v, g3 = g;
        REQUIRE(nn::detail::adam_update(n, w3.data(), m3.data(), v3.data(), g3.data(), c, true));
        std::vector<T> w4 = w, m4 = m, v4 = v;
        reference_update(n, w4.data(), m4.data(), v4.data(), g.data(), c);
        REQUIRE((w3 == w4 && m3 == m4 && v3 == v4));
        REQUIRE(g3 == std::vector<T>(n, T(0)));
    }
}

// The pass reports a weight that the update made infinite or NaN (the training loop then
// reads the weights to say which), wherever it is in the array: the vector body or the tail.
TEMPLATE_TEST_CASE("Adam's update reports a non-finite weight", "[optimizers]", float, double) {
    using T = TestType;
    for (std::size_t bad : {std::size_t(0), std::size_t(17), std::size_t(30)}) {
        for (T poison : {std::numeric_limits<T>::infinity(), std::numeric_limits<T>::quiet_NaN()}) {
            std::vector<T> w(31, T(0.5)), m(31, T(0)), v(31, T(0)), g(31, T(0.1));
            g[bad] = poison;
            INFO("index " << bad << ", gradient " << poison);
            REQUIRE_FALSE(nn::detail::adam_update(31, w.data(), m.data(), v.data(), g.data(),
                                                  adam_constants(false, T(1)), true));
            REQUIRE_FALSE(std::isfinite(w[bad]));
        }
    }
}

// A weight whose gradient has become 0: its first moment decays by beta1 each step and would
// be subnormal in float after about 800 steps (slow on x86: a microcode assist per operation);
// the update stores 0 instead, and the weight itself is moved exactly as without the flush.
TEMPLATE_TEST_CASE("Adam's moments of an idle weight decay to 0, never through subnormal numbers", "[optimizers]",
                   float, double) {
    using T = TestType;
    T w = T(0.25), m = T(0.01), v = T(1e-4);
    T g = 0;
    const int steps = std::is_same_v<T, float> ? 1000 : 7000;  // 0.9^steps * 0.01 < the smallest normal
    bool subnormal_seen = false;
    for (int step = 1; step <= steps; ++step) {
        const T w_before = w;
        const nn::detail::AdamConstants<T> plain{T(0.9), T(0.999), T(1e-8), T(0), T(0),  // no weight decay
                                                 T(1e-3) / (T(1) - std::pow(T(0.9), T(step))),
                                                 std::sqrt(T(1) - std::pow(T(0.999), T(step)))};
        REQUIRE(nn::detail::adam_update(1, &w, &m, &v, &g, plain, false));
        subnormal_seen = subnormal_seen || std::fpclassify(m) == FP_SUBNORMAL || std::fpclassify(v) == FP_SUBNORMAL;
        if (m == T(0)) REQUIRE(w == w_before);  // a flushed moment takes no step
    }
    CHECK_FALSE(subnormal_seen);
    REQUIRE(m == T(0));
}
