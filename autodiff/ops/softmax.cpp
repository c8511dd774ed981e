// softmax, log_softmax and the fused softmax cross-entropy, over axis 0 (one column per
// example). All go through one stable kernel that subtracts each column's max first.

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

template <class T>
Var<T> softmax(Var<T> z) {
    Tape<T>& tape = ops::common_tape("softmax", {z});
    // dz = y * (g - sum_k g_k y_k), per column
    auto backward = [](Tape<T>& tape, Node<T>& y) {
        Matrix<T>& dot = y.work[0];
        ensure_shape(dot, {1, y.value.shape()[1]});
        std::fill(dot.begin(), dot.end(), T(0));
        const std::size_t cols = y.value.shape()[1];
        const T* p = y.value.data();
        const T* g = y.grad.data();
        for (std::size_t k = 0; k < y.value.size(); ++k) dot.data()[k % cols] += g[k] * p[k];
        tape.grad_of(y, 0).accumulate([&](std::size_t k) { return p[k] * (g[k] - dot.data()[k % cols]); });
    };
    return tape.record("softmax", {z}, z.shape(), backward, [&](Node<T>& y) {
        kernels::softmax_columns(z.value(), y.value, y.work[0], y.work[1]);
    });
}

template <class T>
Var<T> log_softmax(Var<T> z) {
    Tape<T>& tape = ops::common_tape("log_softmax", {z});
    // dz = g - softmax(z) * sum_k g_k, per column
    auto backward = [](Tape<T>& tape, Node<T>& y) {
        kernels::column_sum(y.grad, y.work[0]);
        const std::size_t cols = y.value.shape()[1];
        const T* p = y.saved.data();
        const T* g = y.grad.data();
        const T* total = y.work[0].data();
        tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k] - p[k] * total[k % cols]; });
    };
    return tape.record("log_softmax", {z}, z.shape(), backward, [&](Node<T>& y) {
        kernels::softmax_columns(z.value(), y.saved, y.work[0], y.work[1]);
        const Matrix<T>& zv = z.value();
        const T* log_norm = y.work[0].data();
        const std::size_t cols = zv.shape()[1];
        for (std::size_t k = 0; k < zv.size(); ++k) y.value.data()[k] = zv.data()[k] - log_norm[k % cols];
    });
}

namespace {

// Shared by both target forms: dZ = g / m * (P * target_mass - Y), where target_mass is
// each column's sum of Y (1 for one-hot) and Y is given as a matrix or by class indices.
template <class T>
void cross_entropy_backward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& P = loss.saved;
    const std::size_t cols = P.shape()[1];
    const T factor = loss.grad(0, 0) * loss.scalar;  // scalar holds 1/m
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

template <class T, class Targets, class Fill>
Var<T> cross_entropy(Var<T> logits, const Targets& targets, Fill&& fill_targets_and_loss) {
    Tape<T>& tape = ops::common_tape("softmax_cross_entropy", {logits});
    return tape.record("softmax_cross_entropy", {logits}, {1, 1}, cross_entropy_backward<T>, [&](Node<T>& loss) {
        const Matrix<T>& Z = logits.value();
        const std::size_t m = Z.shape()[1];
        loss.scalar = T(1) / static_cast<T>(m);
        kernels::softmax_columns(Z, loss.saved, loss.work[0], loss.work[1]);
        // -log softmax(Z)[i, j] = log_norm[j] - Z[i, j]: finite even for logits of +-1e4.
        loss.value(0, 0) = fill_targets_and_loss(loss, Z, targets) * loss.scalar;
    });
}

}  // namespace

template <class T>
Var<T> softmax_cross_entropy(Var<T> logits, const Matrix<T>& Y) {
    ops::common_tape("softmax_cross_entropy", {logits});
    ops::require_same_shape("softmax_cross_entropy", "logits", logits, "Y", shape_of(Y));
    ops::require_finite("softmax_cross_entropy", "Y", Y);
    return cross_entropy(logits, Y, [](Node<T>& loss, const Matrix<T>& Z, const Matrix<T>& Y) {
        loss.labels.clear();
        ensure_shape(loss.targets, shape_of(Y));
        std::copy(Y.begin(), Y.end(), loss.targets.begin());
        const std::size_t rows = Z.shape()[0], cols = Z.shape()[1];
        const T* log_norm = loss.work[0].data();
        T total = T(0);
        for (std::size_t i = 0; i < rows; ++i) {
            const T* y = Y.data() + i * cols;
            const T* z = Z.data() + i * cols;
            for (std::size_t j = 0; j < cols; ++j)
                if (y[j] != T(0)) total += y[j] * (log_norm[j] - z[j]);  // skip: 0 * inf would be NaN
        }
        kernels::column_sum(Y, loss.work[1]);  // each example's target mass, for backward
        return total;
    });
}

template <class T>
Var<T> softmax_cross_entropy(Var<T> logits, const Labels& classes) {
    ops::common_tape("softmax_cross_entropy", {logits});
    if (classes.size() != logits.cols())
        ops::fail("softmax_cross_entropy", "logits are " + to_string(logits.shape()) + " (classes x examples) but " +
                                               std::to_string(classes.size()) + " class labels were given");
    for (std::size_t j = 0; j < classes.size(); ++j)
        if (classes[j] >= logits.rows())
            ops::fail("softmax_cross_entropy", "label " + std::to_string(classes[j]) + " of example " +
                                                   std::to_string(j) + " is out of range for " +
                                                   std::to_string(logits.rows()) + " classes");
    return cross_entropy(logits, classes, [](Node<T>& loss, const Matrix<T>& Z, const Labels& classes) {
        loss.labels = classes;  // copy-assign keeps the capacity: no allocation on reuse
        const std::size_t cols = Z.shape()[1];
        const T* log_norm = loss.work[0].data();
        T total = T(0);
        for (std::size_t j = 0; j < cols; ++j) total += log_norm[j] - Z(classes[j], j);
        return total;
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
