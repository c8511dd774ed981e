// softmax and log_softmax along either axis (axis 0, each column, is the default: one
// column per example), and the fused softmax cross-entropy over axis 0. All go through one
// stable computation that subtracts each group's max first.

#include <algorithm>
#include <cmath>

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

Shape reduced(Shape s, std::uint32_t axis) { return axis == 0 ? Shape{1, s.cols} : Shape{s.rows, 1}; }

// Stable softmax of each column (axis 0, the kernel) or each row (axis 1) into p; leaves
// each group's max and log(sum(exp(z - max))) apart in max and log_sum (1 x m or n x 1):
// added, they would round log_sum away at large z (float 1e8: ulp 8).
template <class T>
void softmax_along(const Matrix<T>& z, std::uint32_t axis, Matrix<T>& p, Matrix<T>& max_of, Matrix<T>& log_sum) {
    if (axis == 0) return kernels::softmax_columns(z, p, max_of, log_sum);
    const std::size_t rows = z.shape()[0], cols = z.shape()[1];
    ensure_shape(p, shape_of(z));
    ensure_shape(max_of, {rows, 1});
    ensure_shape(log_sum, {rows, 1});
    for (std::size_t i = 0; i < rows; ++i) {
        const T* z_row = z.data() + i * cols;
        T* p_row = p.data() + i * cols;
        const T max = *std::max_element(z_row, z_row + cols);
        for (std::size_t j = 0; j < cols; ++j) p_row[j] = z_row[j] - max;
        kernels::exp_nonpositive(p_row, cols);
        const T total = kernels::row_sum(p_row, cols);
        max_of.data()[i] = max;
        log_sum.data()[i] = std::log(total);
        const T inverse = T(1) / total;
        for (std::size_t j = 0; j < cols; ++j) p_row[j] *= inverse;
    }
}

// The group (column for axis 0, row for axis 1) of flat index k.
template <int axis>
std::size_t group_of(std::size_t k, std::size_t cols) { return axis == 0 ? k % cols : k / cols; }

// node.params()[0] = axis
template <class T>
void softmax_forward(Tape<T>& tape, Node<T>& y) {
    softmax_along(tape.input(y, 0), y.params()[0], y.value, y.work()[0], y.work()[1]);
}

// dz = y * (g - sum_k g_k y_k), per group
template <class T, int axis>
void softmax_backward_along(Tape<T>& tape, Node<T>& y) {
    Matrix<T>& dot = y.work()[0];
    ensure_shape(dot, reduced(shape_of(y.value), axis));
    std::fill(dot.begin(), dot.end(), T(0));
    const std::size_t cols = y.value.shape()[1];
    const T* p = y.value.data();
    const T* g = y.grad.data();
    for (std::size_t k = 0; k < y.value.size(); ++k) dot.data()[group_of<axis>(k, cols)] += g[k] * p[k];
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return p[k] * (g[k] - dot.data()[group_of<axis>(k, cols)]); });
}

template <class T>
void softmax_backward(Tape<T>& tape, Node<T>& y) {
    if (y.params()[0] == 0) softmax_backward_along<T, 0>(tape, y); else softmax_backward_along<T, 1>(tape, y);
}

// y = (z - max) - log_sum per group; the softmax stays in y.saved() for backward.
template <class T, int axis>
void log_softmax_forward_along(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& zv = tape.input(y, 0);
    softmax_along(zv, axis, y.saved(), y.work()[0], y.work()[1]);
    const T* max = y.work()[0].data();
    const T* log_sum = y.work()[1].data();
    const std::size_t cols = zv.shape()[1];
    for (std::size_t k = 0; k < zv.size(); ++k) {
        const std::size_t g = group_of<axis>(k, cols);
        y.value.data()[k] = (zv.data()[k] - max[g]) - log_sum[g];
    }
}

template <class T>
void log_softmax_forward(Tape<T>& tape, Node<T>& y) {
    if (y.params()[0] == 0) log_softmax_forward_along<T, 0>(tape, y); else log_softmax_forward_along<T, 1>(tape, y);
}

// dz = g - softmax(z) * sum_k g_k, per group
template <class T, int axis>
void log_softmax_backward_along(Tape<T>& tape, Node<T>& y) {
    ensure_shape(y.work()[0], reduced(shape_of(y.value), axis));
    kernels::sum_to(y.grad, y.work()[0], /*overwrite=*/true);
    const std::size_t cols = y.value.shape()[1];
    const T* p = y.saved().data();
    const T* g = y.grad.data();
    const T* total = y.work()[0].data();
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k] - p[k] * total[group_of<axis>(k, cols)]; });
}

template <class T>
void log_softmax_backward(Tape<T>& tape, Node<T>& y) {
    if (y.params()[0] == 0) log_softmax_backward_along<T, 0>(tape, y); else log_softmax_backward_along<T, 1>(tape, y);
}

// ---- cross-entropy ----
//
// The targets: class indices in loss.labels(); or a matrix Y, the entry's second input when
// given as a handle, else loss.targets() (when labels is empty). With label smoothing
// eps = loss.scalar2 the targets are (1 - eps) Y + eps / classes, as in PyTorch.
// -log softmax(Z)[i, j] = (max[j] - Z[i, j]) + log_sum[j]: finite even for logits of +-1e4,
// and the max is taken off before log_sum is added, so float logits of 1e8 keep their log 2.
// loss.scalar holds 1/m.
template <class T>
const Matrix<T>& target_matrix(Tape<T>& tape, const Node<T>& loss) {
    return loss.arity == 2 ? tape.input(loss, 1) : loss.targets();
}

template <class T>
void cross_entropy_forward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& Z = tape.input(loss, 0);
    kernels::softmax_columns(Z, loss.saved(), loss.work()[0], loss.work()[1]);
    const std::size_t rows = Z.shape()[0], cols = Z.shape()[1];
    T* log_norm = loss.work()[0].data();  // the column max, until max + log_sum is stored for backward
    const T* log_sum = loss.work()[1].data();
    auto minus_log_softmax = [&](T z, std::size_t j) { return (log_norm[j] - z) + log_sum[j]; };
    const T eps = loss.scalar2(), keep = T(1) - eps, spread = eps / static_cast<T>(rows);
    T total = T(0);
    if (loss.labels().empty()) {
        const Matrix<T>& Y = target_matrix(tape, loss);
        for (std::size_t i = 0; i < rows; ++i) {
            const T* y = Y.data() + i * cols;
            const T* z = Z.data() + i * cols;
            for (std::size_t j = 0; j < cols; ++j) {
                const T target = keep * y[j] + spread;
                if (target != T(0)) total += target * minus_log_softmax(z[j], j);  // skip: 0 * inf would be NaN
            }
        }
        // Targets given as a handle are checked here, so that a replay over new values checks
        // them too (copied ones were checked when recorded, and by Replay::set_targets).
        if (loss.arity == 2) ops::require_finite_target("softmax_cross_entropy", "targets", total, Y);
        for (std::size_t j = 0; j < cols; ++j) log_norm[j] += log_sum[j];  // what backward reads
        kernels::column_sum(Y, loss.work()[1]);  // each example's target mass, for backward
        for (T& mass : loss.work()[1]) mass = keep * mass + eps;
    } else {
        for (std::size_t j = 0; j < cols; ++j) total += keep * minus_log_softmax(Z(loss.labels()[j], j), j);
        if (eps != T(0))  // the spread part: eps/classes of -log softmax over every class
            for (std::size_t i = 0; i < rows; ++i)
                for (std::size_t j = 0; j < cols; ++j) total += spread * minus_log_softmax(Z(i, j), j);
        for (std::size_t j = 0; j < cols; ++j) log_norm[j] += log_sum[j];
    }
    loss.value(0, 0) = total * loss.scalar;
}

// dZ = g / m * (P * target_mass - targets), target_mass being each column's sum of the
// targets (1 for one-hot); a target handle gets g / m * -log softmax(Z) (times 1 - eps).
template <class T>
void cross_entropy_backward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& P = loss.saved();
    const std::size_t rows = P.shape()[0], cols = P.shape()[1];
    const T factor = loss.grad(0, 0) * loss.scalar;
    const T eps = loss.scalar2(), keep = T(1) - eps, spread = eps / static_cast<T>(rows);
    const T* p = P.data();
    if (tape.needs_grad(loss, 0)) {
        auto dZ = tape.grad_of(loss, 0);
        if (loss.labels().empty()) {
            const T* y = target_matrix(tape, loss).data();
            const T* mass = loss.work()[1].data();
            dZ.accumulate_2d([&](std::size_t i, std::size_t j) {
                const std::size_t k = i * cols + j;
                return factor * (p[k] * mass[j] - (keep * y[k] + spread));
            });
        } else {
            const std::size_t* label = loss.labels().data();
            dZ.accumulate_2d([&](std::size_t i, std::size_t j) {
                return factor * (p[i * cols + j] - (label[j] == i ? keep : T(0)) - spread);
            });
        }
    }
    if (loss.arity == 2 && tape.needs_grad(loss, 1)) {
        const T* z = tape.input(loss, 0).data();
        const T* log_norm = loss.work()[0].data();
        tape.grad_of(loss, 1).accumulate_2d(
            [&](std::size_t i, std::size_t j) { return factor * keep * (log_norm[j] - z[i * cols + j]); });
    }
}

// store_targets copies the targets into the entry (the caller's may go away).
template <class T, class Setup>
Var<T> cross_entropy(std::initializer_list<InputRef<T>> inputs, T label_smoothing, Setup&& store_targets) {
    const Var<T>& logits = **inputs.begin();
    const ops::HeldTape<T> held("softmax_cross_entropy", inputs);
    Tape<T>& tape = held.tape();
    if (!(label_smoothing >= T(0) && label_smoothing <= T(1)))
        ops::fail("softmax_cross_entropy", "label_smoothing is " + ops::number_text(label_smoothing) + " (it must be in [0, 1])");
    const T inverse_m = T(1) / static_cast<T>(logits.cols());
    return ops::record_library_op(tape, "softmax_cross_entropy", inputs, {1, 1}, cross_entropy_forward<T>, cross_entropy_backward<T>,
                          [&](Node<T>& loss) {
                              loss.scalar = inverse_m;
                              loss.set_scalar2(label_smoothing);
                              store_targets(loss);
                          });
}

template <class T>
Var<T> softmax_or_log(const char* op, const Var<T>& z, int axis, ForwardFn<T> forward, BackwardFn<T> backward) {
    const ops::HeldTape<T> held(op, {z});
    Tape<T>& tape = held.tape();
    const auto along = static_cast<std::uint32_t>(ops::require_axis(op, axis));
    return ops::record_library_op(tape, op, {z}, z.shape(), forward, backward, [&](Node<T>& y) { y.params()[0] = along; });
}

template <class T>
Var<T> cross_entropy_matrix(const Var<T>& logits, const Matrix<T>& Y, T label_smoothing) {
    const ops::HeldTape<T> held("softmax_cross_entropy", {logits});
    ops::require_same_shape("softmax_cross_entropy", "logits", logits, "Y", shape_of(Y));
    ops::require_finite("softmax_cross_entropy", "Y", Y);
    return cross_entropy<T>({logits}, label_smoothing, [&](Node<T>& loss) {
        loss.labels().clear();
        loss.copy_targets(Y);
    });
}

template <class T>
Var<T> cross_entropy_labels(const Var<T>& logits, const Labels& classes, T label_smoothing) {
    const ops::HeldTape<T> held("softmax_cross_entropy", {logits});
    ops::require_labels("softmax_cross_entropy", logits.shape(), classes);
    return cross_entropy<T>({logits}, label_smoothing, [&](Node<T>& loss) {
        loss.labels() = classes;  // copy-assign keeps the capacity: no allocation on reuse
    });
}

}  // namespace

template <class T> Var<T> softmax(const Var<T>& z, int axis) { return softmax_or_log("softmax", z, axis, softmax_forward<T>, softmax_backward<T>); }
template <class T> Var<T> log_softmax(const Var<T>& z, int axis) {
    return softmax_or_log("log_softmax", z, axis, log_softmax_forward<T>, log_softmax_backward<T>);
}
template <class T> Var<T> softmax(const Var<T>& z) { return softmax(z, 0); }
template <class T> Var<T> log_softmax(const Var<T>& z) { return log_softmax(z, 0); }

template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Matrix<T>& Y) { return cross_entropy_matrix(logits, Y, T(0)); }
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Labels& classes) {
    return cross_entropy_labels(logits, classes, T(0));
}
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Matrix<T>& Y, scalar_of<T> label_smoothing) {
    return cross_entropy_matrix(logits, Y, label_smoothing);
}
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Labels& classes, scalar_of<T> label_smoothing) {
    return cross_entropy_labels(logits, classes, label_smoothing);
}

template <class T>
Var<T> softmax_cross_entropy(const Var<T>& logits, const Var<T>& targets) {
    const ops::HeldTape<T> held("softmax_cross_entropy", {logits, targets});
    ops::require_same_shape("softmax_cross_entropy", "logits", logits, "targets", targets.shape());
    return cross_entropy<T>({logits, targets}, T(0), [](Node<T>& loss) { loss.labels().clear(); });
}

#define TAPEGRAD_INSTANTIATE(T)                                                  \
    template Var<T> softmax<T>(const Var<T>&);                                          \
    template Var<T> log_softmax<T>(const Var<T>&);                                      \
    template Var<T> softmax<T>(const Var<T>&, int);                                     \
    template Var<T> log_softmax<T>(const Var<T>&, int);                                 \
    template Var<T> softmax_cross_entropy<T>(const Var<T>&, const Matrix<T>&);          \
    template Var<T> softmax_cross_entropy<T>(const Var<T>&, const Labels&);             \
    template Var<T> softmax_cross_entropy<T>(const Var<T>&, const Matrix<T>&, T);       \
    template Var<T> softmax_cross_entropy<T>(const Var<T>&, const Labels&, T);          \
    template Var<T> softmax_cross_entropy<T>(const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
