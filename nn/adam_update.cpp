// The moments are stored as 0 where they would be subnormal (below the smallest normal
// number, 1.2e-38 in float): the first moment of a weight whose gradient has become 0 decays
// by beta1 each step and is subnormal in float after about 800 steps, and x86 computes with
// subnormals through a microcode assist per operation (train_mlp's later epochs took up to
// 1.35x the first). Such a moment moves its weight by at most step_size x 1.2e-38 / epsilon
// (1e-33 with the defaults), so the weights are those of the unflushed update unless a
// weight is itself that small: the same choice as torch.set_flush_denormal(True), made for the optimizer's
// state alone (the thread's floating-point mode is left as the program set it). An epsilon
// too small for that bound to hold turns the flushing off (flush_below, adam_update.hpp).
//
// Adam's update runs over every parameter after every step: in the portable build (x86-64
// baseline, SSE2) it took 13% of a Fashion-MNIST epoch, its square roots and divisions two
// or four at a time. Compiled here also for AVX2 and AVX-512, the loader picking the
// version the CPU runs (GCC's target_clones). Every version rounds alike: each element is
// computed on its own by the same operations (IEEE square root and division are exact to
// the rounding), and this file is compiled without contracting a*b+c into fused
// multiply-adds (CMakeLists.txt), so a run gives the same numbers on any machine.

#include "nn/adam_update.hpp"

#include <cmath>
#include <limits>

namespace nn::detail {

namespace {

// The update of one element; the caller's loop decides what else happens in the pass.
template <class T>
struct AdamStep {
    T beta1, beta2, epsilon, l2, shrink, step_size, root_correction2, flush_below;
    explicit AdamStep(const AdamConstants<T>& c)
        : beta1(c.beta1), beta2(c.beta2), epsilon(c.epsilon), l2(c.l2), shrink(c.shrink), step_size(c.step_size),
          root_correction2(c.root_correction2), flush_below(c.flush_below) {}
    [[gnu::always_inline]] T operator()(T& w, T& m, T& v, T g) const {
        const T gk = g + l2 * w;
        const T mk = beta1 * m + (T(1) - beta1) * gk;
        const T vk = beta2 * v + (T(1) - beta2) * gk * gk;
        m = std::abs(mk) < flush_below ? T(0) : mk;
        v = vk < flush_below ? T(0) : vk;
        return w -= shrink * w + step_size * m / (std::sqrt(v) / root_correction2 + epsilon);
    }
};

// Every new weight checked finite in the same pass (no early exit, so the loop vectorises):
// the training loop's check after every step then need not read the weights again. A NaN
// fails |w| <= max as an infinity does. Always inlined, here and below: each instruction-set
// clone must compile the loop for its own target (called, it ran the baseline's code).
template <class T, bool zero_gradient>
[[gnu::always_inline]] inline bool adam_update_loop(std::size_t n, T* __restrict w, T* __restrict m,
                                                    T* __restrict v, T* __restrict g, const AdamConstants<T>& c) {
    const AdamStep<T> step(c);  // copies: the loop reloads nothing through a pointer it writes
    const T largest = std::numeric_limits<T>::max();
    unsigned not_finite = 0;
    for (std::size_t k = 0; k < n; ++k) {
        const T updated = step(w[k], m[k], v[k], g[k]);
        not_finite |= !(std::abs(updated) <= largest);
        if constexpr (zero_gradient) g[k] = T(0);
    }
    return not_finite == 0;
}

template <class T>
[[gnu::always_inline]] inline bool adam_update_pass(std::size_t n, T* w, T* m, T* v, T* g, const AdamConstants<T>& c,
                                                    bool zero_gradient) {
    return zero_gradient ? adam_update_loop<T, true>(n, w, m, v, g, c) : adam_update_loop<T, false>(n, w, m, v, g, c);
}

}  // namespace

// Not under the sanitizers: the clones' resolver runs while the dynamic loader relocates the
// program, before a sanitizer's runtime is set up, and ThreadSanitizer's instrumentation of
// it crashed there (test_hardening segfaulted before main). Sanitized builds run the baseline
// loop, which every clone matches bit for bit (tests/nn/adam_update_test.cpp).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(TAPEGRAD_NO_CLONES)
#define TAPEGRAD_INSTRUCTION_SET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TAPEGRAD_INSTRUCTION_SET_CLONES
#endif

TAPEGRAD_INSTRUCTION_SET_CLONES
bool adam_update(std::size_t n, float* w, float* m, float* v, float* g, const AdamConstants<float>& c,
                 bool zero_gradient) {
    return adam_update_pass(n, w, m, v, g, c, zero_gradient);
}

TAPEGRAD_INSTRUCTION_SET_CLONES
bool adam_update(std::size_t n, double* w, double* m, double* v, double* g, const AdamConstants<double>& c,
                 bool zero_gradient) {
    return adam_update_pass(n, w, m, v, g, c, zero_gradient);
}

}  // namespace nn::detail
