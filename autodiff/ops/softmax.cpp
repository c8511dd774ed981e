// softmax, log_softmax and the fused softmax cross-entropy, over axis 0 (one column per
// example). All go through one stable kernel that subtracts each column's max first.

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

template <class T>
void softmax_forward(Tape<T>& tape, Node<T>& y) {
    kernels::softmax_columns(tape.input(y, 0), y.value, y.work[0], y.work[1]);
}

// dz = y * (g - sum_k g_k y_k), per column
template <class T>
void softmax_backward(Tape<T>& tape, Node<T>& y) {
    Matrix<T>& dot = y.work[0];
    ensure_shape(dot, {1, y.value.shape()[1]});
    std::fill(dot.begin(), dot.end(), T(0));
    const std::size_t cols = y.value.shape()[1];
    const T* p = y.value.data();
    const T* g = y.grad.data();
    for (std::size_t k = 0; k < y.value.size(); ++k) dot.data()[k % cols] += g[k] * p[k];
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return p[k] * (g[k] - dot.data()[k % cols]); });
}

// y = z - log_norm per column; the softmax stays in y.saved for backward.
template <class T>
void log_softmax_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& zv = tape.input(y, 0);
    kernels::softmax_columns(zv, y.saved, y.work[0], y.work[1]);
    const T* log_norm = y.work[0].data();
    const std::size_t cols = zv.shape()[1];
    for (std::size_t k = 0; k < zv.size(); ++k) y.value.data()[k] = zv.data()[k] - log_norm[k % cols];
}

// dz = g - softmax(z) * sum_k g_k, per column
template <class T>
void log_softmax_backward(Tape<T>& tape, Node<T>& y) {
    kernels::column_sum(y.grad, y.work[0]);
    const std::size_t cols = y.value.shape()[1];
    const T* p = y.saved.data();
    const T* g = y.grad.data();
    const T* total = y.work[0].data();
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k] - p[k] * total[k % cols]; });
}

// The loss against the targets the entry holds: class indices in loss.labels, or (when
// labels is empty) a target matrix in loss.targets. -log softmax(Z)[i, j] =
// log_norm[j] - Z[i, j]: finite even for logits of +-1e4. loss.scalar holds 1/m.
template <class T>
void cross_entropy_forward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& Z = tape.input(loss, 0);
    kernels::softmax_columns(Z, loss.saved, loss.work[0], loss.work[1]);
    const std::size_t rows = Z.shape()[0], cols = Z.shape()[1];
    const T* log_norm = loss.work[0].data();
    T total = T(0);
    if (loss.labels.empty()) {
        const Matrix<T>& Y = loss.targets;
        for (std::size_t i = 0; i < rows; ++i) {
            const T* y = Y.data() + i * cols;
            const T* z = Z.data() + i * cols;
            for (std::size_t j = 0; j < cols; ++j)
                if (y[j] != T(0)) total += y[j] * (log_norm[j] - z[j]);  // skip: 0 * inf would be NaN
        }
        kernels::column_sum(Y, loss.work[1]);  // each example's target mass, for backward
    } else {
        for (std::size_t j = 0; j < cols; ++j) total += log_norm[j] - Z(loss.labels[j], j);
    }
    loss.value(0, 0) = total * loss.scalar;
}

// dZ = g / m * (P * target_mass - Y), where target_mass is each column's sum of Y
// (1 for one-hot) and Y is given as a matrix or by class indices.
template <class T>
void cross_entropy_backward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& P = loss.saved;
    const std::size_t cols = P.shape()[1];
    const T factor = loss.grad(0, 0) * loss.scalar;
    auto dZ = tape.grad_of(loss, 0);
    const T* p = P.data();
    if (loss.labels.empty()) {
        const T* y = loss.targets.data();
        const T* mass = loss.work[1].data();
        dZ.accumulate_2d([&](std::size_t i, std::size_t j) {
            const std::size_t k = i * cols + j;
            return factor * (p[k] * mass[j] - y[k]);
        });
    } else {
        const std::size_t* label = loss.labels.data();
        dZ.accumulate_2d([&](std::size_t i, std::size_t j) {
            return factor * (p[i * cols + j] - (label[j] == i ? T(1) : T(0)));
        });
    }
}

// setup copies the targets into the entry (the caller's may go away).
template <class T, class Setup>
Var<T> cross_entropy(Var<T> logits, Setup&& store_targets) {
    Tape<T>& tape = ops::common_tape("softmax_cross_entropy", {logits});
    const T inverse_m = T(1) / static_cast<T>(logits.cols());
    return tape.record_op("softmax_cross_entropy", {logits}, {1, 1}, cross_entropy_forward<T>,
                          cross_entropy_backward<T>, [&](Node<T>& loss) {
                              loss.scalar = inverse_m;
                              store_targets(loss);
                          });
}

}  // namespace

template <class T>
Var<T> softmax(Var<T> z) {
    Tape<T>& tape = ops::common_tape("softmax", {z});
    return tape.record_op("softmax", {z}, z.shape(), softmax_forward<T>, softmax_backward<T>);
}

template <class T>
Var<T> log_softmax(Var<T> z) {
    Tape<T>& tape = ops::common_tape("log_softmax", {z});
    return tape.record_op("log_softmax", {z}, z.shape(), log_softmax_forward<T>, log_softmax_backward<T>);
}

template <class T>
Var<T> softmax_cross_entropy(Var<T> logits, const Matrix<T>& Y) {
    ops::common_tape("softmax_cross_entropy", {logits});
    ops::require_same_shape("softmax_cross_entropy", "logits", logits, "Y", shape_of(Y));
    ops::require_finite("softmax_cross_entropy", "Y", Y);
    return cross_entropy(logits, [&](Node<T>& loss) {
        loss.labels.clear();
        ensure_shape(loss.targets, shape_of(Y));
        std::copy(Y.begin(), Y.end(), loss.targets.begin());
    });
}

template <class T>
Var<T> softmax_cross_entropy(Var<T> logits, const Labels& classes) {
    ops::common_tape("softmax_cross_entropy", {logits});
    ops::require_labels("softmax_cross_entropy", logits.shape(), classes);
    return cross_entropy(logits, [&](Node<T>& loss) {
        loss.labels = classes;  // copy-assign keeps the capacity: no allocation on reuse
    });
}

#define TAPEGRAD_INSTANTIATE(T)                                                  \
    template Var<T> softmax<T>(Var<T>);                                          \
    template Var<T> log_softmax<T>(Var<T>);                                      \
    template Var<T> softmax_cross_entropy<T>(Var<T>, const Matrix<T>&);          \
    template Var<T> softmax_cross_entropy<T>(Var<T>, const Labels&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
