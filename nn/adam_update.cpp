// Adam's update runs over every parameter after every step: in the portable build (x86-64
// baseline, SSE2) it took 13% of a Fashion-MNIST epoch, its square roots and divisions two
// or four at a time. Compiled here also for AVX2 and AVX-512, the loader picking the
// version the CPU runs (GCC's target_clones). Every version rounds alike: each element is
// computed on its own by the same operations (IEEE square root and division are exact to
// the rounding), and this file is compiled without contracting a*b+c into fused
// multiply-adds (CMakeLists.txt), so a run gives the same numbers on any machine.

#include "nn/adam_update.hpp"

#include <cmath>

namespace nn::detail {

namespace {

template <class T>
inline void adam_update_loop(std::size_t n, T* __restrict w, T* __restrict m, T* __restrict v, const T* __restrict g,
                             const AdamConstants<T>& c) {
    const T beta1 = c.beta1, beta2 = c.beta2, epsilon = c.epsilon, l2 = c.l2, shrink = c.shrink;
    const T step_size = c.step_size, root_correction2 = c.root_correction2;
    for (std::size_t k = 0; k < n; ++k) {
        const T gk = g[k] + l2 * w[k];
        m[k] = beta1 * m[k] + (T(1) - beta1) * gk;
        v[k] = beta2 * v[k] + (T(1) - beta2) * gk * gk;
        w[k] -= shrink * w[k] + step_size * m[k] / (std::sqrt(v[k]) / root_correction2 + epsilon);
    }
}

}  // namespace

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(TAPEGRAD_NO_CLONES)
#define TAPEGRAD_INSTRUCTION_SET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TAPEGRAD_INSTRUCTION_SET_CLONES
#endif

TAPEGRAD_INSTRUCTION_SET_CLONES
void adam_update(std::size_t n, float* w, float* m, float* v, const float* g, const AdamConstants<float>& c) {
    adam_update_loop(n, w, m, v, g, c);
}

TAPEGRAD_INSTRUCTION_SET_CLONES
void adam_update(std::size_t n, double* w, double* m, double* v, const double* g, const AdamConstants<double>& c) {
    adam_update_loop(n, w, m, v, g, c);
}

}  // namespace nn::detail
