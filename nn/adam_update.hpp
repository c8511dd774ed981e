#pragma once
// Adam's update of one parameter (the inner loop of nn::Adam::step), kept in a file of its
// own so that it can be compiled for several instruction sets (adam_update.cpp says why).

#include <cmath>
#include <cstddef>
#include <limits>

namespace nn::detail {

template <class T>
struct AdamConstants {
    T beta1, beta2, epsilon;
    T l2;               // L2 decay folded into the gradient (Adam); 0 for AdamW
    T shrink;           // learning rate x decoupled decay (AdamW); 0 for Adam
    T step_size;        // learning rate / (1 - beta1^t)
    T root_correction2; // sqrt(1 - beta2^t)
    T flush_below = std::numeric_limits<T>::min();  // moments below it are stored as 0 (flush_below())
};

// What AdamConstants::flush_below is for this step: the smallest normal number where storing
// a moment below it as 0 cannot change the step (the most a flushed second moment adds to the
// divisor, sqrt(smallest normal) / root_correction2, is under a quarter of epsilon's last
// digit, so the divisor rounds alike), else 0: nothing is flushed. With an epsilon far below
// a tiny gradient (1e-30 against 1e-20 in float) the second moment alone was flushed, and
// the step was m / epsilon, 1e5 times the learning rate (found by an attack).
template <class T>
T flush_below(T epsilon, T root_correction2) {
    const T smallest = std::numeric_limits<T>::min();
    const T most_added = std::sqrt(smallest) / root_correction2;
    return most_added < epsilon * std::numeric_limits<T>::epsilon() / T(4) ? smallest : T(0);
}

// Over k < n: g' = g + l2 w; m = beta1 m + (1 - beta1) g'; v = beta2 v + (1 - beta2) g'^2,
// each stored as 0 where it would be below c.flush_below (adam_update.cpp says why);
// w -= shrink w + step_size m / (sqrt(v) / root_correction2 + epsilon); then g = 0 if
// zero_gradient (zero_grad() in the same pass). Returns whether every new w is finite.
bool adam_update(std::size_t n, float* w, float* m, float* v, float* g, const AdamConstants<float>& c,
                 bool zero_gradient);
bool adam_update(std::size_t n, double* w, double* m, double* v, double* g, const AdamConstants<double>& c,
                 bool zero_gradient);

}  // namespace nn::detail
