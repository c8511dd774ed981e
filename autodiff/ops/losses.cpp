// Losses that are a mean over elements of a pointwise rule (binary cross-entropy with
// logits, huber), and nll_loss over class indices. Targets given as a Matrix are recorded
// as a constant, so both target forms are one op with one backward.

#include <algorithm>
#include <cmath>
#include <string>

#include "autodiff/exp_kernel.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/activation_rules.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// loss = mean_k f(p_k, t_k); dp and dt are the per-element partials.
// By the kernels' exp and log and the sigmoid's (as softplus): no call per element.
struct BceWithLogitsRule {  // p: logits z, t: targets y
    static constexpr const char* name = "binary_cross_entropy_with_logits";
    template <class T> static T f(T z, T y) {
        return std::max(z, T(0)) - z * y + kernels::log1p_exp_nonpositive_one(-std::abs(z));
    }
    template <class T> static T dp(T z, T y) { return ops::SigmoidRule::f(z) - y; }
    template <class T> static T dt(T z, T) { return -z; }
};
struct HuberRule {  // smooth_l1 with beta 1: quadratic inside |d| < 1, linear outside
    static constexpr const char* name = "huber";
    template <class T> static T f(T p, T t) {
        const T d = p - t;
        return std::abs(d) < T(1) ? T(0.5) * d * d : std::abs(d) - T(0.5);
    }
    template <class T> static T dp(T p, T t) { return std::max(T(-1), std::min(T(1), p - t)); }
    template <class T> static T dt(T p, T t) { return -dp(p, t); }
};

// The target is checked here, as mse checks its own (see mse_forward): a handle's, which a
// Replay reads again, made the loss NaN without a word (ops::require_finite_target).
template <class T, class Rule>
void pointwise_loss_forward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& p = tape.input(loss, 0);
    const Matrix<T>& t = tape.input(loss, 1);
    loss.scalar = T(1) / static_cast<T>(p.size());
    T total = T(0);
    for (std::size_t k = 0; k < p.size(); ++k) total += Rule::f(p.data()[k], t.data()[k]);
    ops::require_finite_target(Rule::name, "target", total, t);
    loss.value(0, 0) = total * loss.scalar;
}

template <class T, class Rule>
void pointwise_loss_backward(Tape<T>& tape, Node<T>& loss) {
    const T* p = tape.input(loss, 0).data();
    const T* t = tape.input(loss, 1).data();
    const T factor = loss.grad(0, 0) * loss.scalar;
    if (tape.needs_grad(loss, 0)) tape.grad_of(loss, 0).accumulate([&](std::size_t k) { return factor * Rule::dp(p[k], t[k]); });
    if (tape.needs_grad(loss, 1)) tape.grad_of(loss, 1).accumulate([&](std::size_t k) { return factor * Rule::dt(p[k], t[k]); });
}

template <class T, class Rule>
Var<T> pointwise_loss(const Var<T>& prediction, const Var<T>& target) {
    const ops::HeldTape<T> held(Rule::name, {prediction, target});
    Tape<T>& tape = held.tape();
    ops::require_same_shape(Rule::name, "prediction", prediction, "target", target.shape());
    return ops::record_library_op(tape, Rule::name, {prediction, target}, {1, 1}, pointwise_loss_forward<T, Rule>,
                          pointwise_loss_backward<T, Rule>);
}

// Targets given as a matrix: checked, then recorded as a constant (a reused buffer).
template <class T>
Var<T> constant_target(const char* op, const Var<T>& prediction, const Matrix<T>& target) {
    const ops::HeldTape<T> held(op, {prediction});
    Tape<T>& tape = held.tape();
    ops::require_same_shape(op, "prediction", prediction, "target", shape_of(target));
    ops::require_finite(op, "target", target);
    return tape.constant(target);
}

// ---- nll_loss: labels = the class of each example ----

template <class T>
void nll_forward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& logp = tape.input(loss, 0);
    const std::size_t cols = logp.shape()[1];
    loss.scalar = T(1) / static_cast<T>(cols);
    T total = T(0);
    for (std::size_t j = 0; j < cols; ++j) total -= logp.data()[loss.labels()[j] * cols + j];
    loss.value(0, 0) = total * loss.scalar;
}

template <class T>
void nll_backward(Tape<T>& tape, Node<T>& loss) {
    auto sink = tape.grad_of(loss, 0);
    if (sink.overwrite) std::fill(sink.grad.begin(), sink.grad.end(), T(0));
    const std::size_t cols = sink.grad.shape()[1];
    const T share = -loss.grad(0, 0) * loss.scalar;
    for (std::size_t j = 0; j < cols; ++j) sink.grad.data()[loss.labels()[j] * cols + j] += share;
}

}  // namespace

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets) {
    return pointwise_loss<T, BceWithLogitsRule>(logits, targets);
}
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Matrix<T>& targets) {
    return pointwise_loss<T, BceWithLogitsRule>(logits, constant_target(BceWithLogitsRule::name, logits, targets));
}
template <class T> Var<T> huber(const Var<T>& prediction, const Var<T>& target) { return pointwise_loss<T, HuberRule>(prediction, target); }
template <class T>
Var<T> huber(const Var<T>& prediction, const Matrix<T>& target) {
    return pointwise_loss<T, HuberRule>(prediction, constant_target(HuberRule::name, prediction, target));
}
template <class T> Var<T> mse(const Var<T>& prediction, const Matrix<T>& target) {
    return mse(prediction, constant_target("mse", prediction, target));
}

template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const Labels& classes) {
    const ops::HeldTape<T> held("nll_loss", {log_probs});
    Tape<T>& tape = held.tape();
    ops::require_labels("nll_loss", log_probs.shape(), classes);
    return ops::record_library_op(tape, "nll_loss", {log_probs}, {1, 1}, nll_forward<T>, nll_backward<T>,
                          [&](Node<T>& loss) { loss.labels() = classes; });
}

#define TAPEGRAD_INSTANTIATE(T)                                                          \
    template Var<T> binary_cross_entropy_with_logits<T>(const Var<T>&, const Var<T>&);                 \
    template Var<T> binary_cross_entropy_with_logits<T>(const Var<T>&, const Matrix<T>&);       \
    template Var<T> huber<T>(const Var<T>&, const Var<T>&);                                            \
    template Var<T> huber<T>(const Var<T>&, const Matrix<T>&);                                  \
    template Var<T> mse<T>(const Var<T>&, const Matrix<T>&);                                    \
    template Var<T> nll_loss<T>(const Var<T>&, const Labels&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
