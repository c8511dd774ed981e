// nn::detail::adam_update runs in the version the CPU picks at load time (AVX-512, AVX2 or
// the x86-64 baseline): each must give the plain loop's numbers bit for bit, or a run's
// results would depend on the machine it ran on.

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "nn/adam_update.hpp"

namespace {

// The update as written in nn/adam_update.hpp, one element at a time (this file, like
// adam_update.cpp, is compiled without fused multiply-adds: tests/CMakeLists.txt).
template <class T>
void reference_update(std::size_t n, T* w, T* m, T* v, const T* g, const nn::detail::AdamConstants<T>& c) {
    for (std::size_t k = 0; k < n; ++k) {
        const T gk = g[k] + c.l2 * w[k];
        m[k] = c.beta1 * m[k] + (T(1) - c.beta1) * gk;
        v[k] = c.beta2 * v[k] + (T(1) - c.beta2) * gk * gk;
        w[k] -= c.shrink * w[k] + c.step_size * m[k] / (std::sqrt(v[k]) / c.root_correction2 + c.epsilon);
    }
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
        m[k] = T(0.1 * uniform(rng));
        v[k] = T(0.01 * std::abs(uniform(rng)));
        g[k] = k % 17 == 0 ? T(0) : T(uniform(rng) * std::pow(10.0, -int(k % 9)));  // zeros and tiny gradients
    }
    const T t = 3;
    for (bool decoupled : {false, true}) {
        const nn::detail::AdamConstants<T> c{T(0.9),
                                             T(0.999),
                                             T(1e-8),
                                             decoupled ? T(0) : T(0.01),
                                             decoupled ? T(1e-3) * T(0.01) : T(0),
                                             T(1e-3) / (T(1) - std::pow(T(0.9), t)),
                                             std::sqrt(T(1) - std::pow(T(0.999), t))};
        std::vector<T> w1 = w, m1 = m, v1 = v, w2 = w, m2 = m, v2 = v;
        for (int step = 0; step < 3; ++step) {
            nn::detail::adam_update(n, w1.data(), m1.data(), v1.data(), g.data(), c);
            reference_update(n, w2.data(), m2.data(), v2.data(), g.data(), c);
        }
        std::size_t differing = 0;
        for (std::size_t k = 0; k < n; ++k) differing += (w1[k] != w2[k]) + (m1[k] != m2[k]) + (v1[k] != v2[k]);
        INFO("decoupled: " << decoupled);
        REQUIRE(differing == 0);
        REQUIRE(w1 != w);  // it did update
    }
}
