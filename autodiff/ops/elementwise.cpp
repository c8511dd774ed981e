// add, sub, mul, div, maximum, minimum with 2-D broadcasting. One rule per op gives the value and the two
// partial derivatives; broadcasting forward and its reduction backward are shared.

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// y = f(a, b); dy/da and dy/db, given a, b and y.
struct AddRule {
    static constexpr const char* name = "add";
    static constexpr const char* symbol = "+";
    template <class T> static T f(T a, T b) { return a + b; }
    template <class T> static T da(T, T, T) { return T(1); }
    template <class T> static T db(T, T, T) { return T(1); }
};
struct SubRule {
    static constexpr const char* name = "sub";
    static constexpr const char* symbol = "-";
    template <class T> static T f(T a, T b) { return a - b; }
    template <class T> static T da(T, T, T) { return T(1); }
    template <class T> static T db(T, T, T) { return T(-1); }
};
struct MulRule {
    static constexpr const char* name = "mul";
    static constexpr const char* symbol = "*";
    template <class T> static T f(T a, T b) { return a * b; }
    template <class T> static T da(T, T b, T) { return b; }
    template <class T> static T db(T a, T, T) { return a; }
};
struct DivRule {
    static constexpr const char* name = "div";
    static constexpr const char* symbol = "/";
    template <class T> static T f(T a, T b) { return a / b; }
    template <class T> static T da(T, T b, T) { return T(1) / b; }
    template <class T> static T db(T, T b, T y) { return -y / b; }
};

// A NaN on either side gives NaN; at a tie each side gets half the gradient (PyTorch).
struct MaximumRule {
    static constexpr const char* name = "maximum";
    static constexpr const char* symbol = "max";
    template <class T> static T f(T a, T b) { return (a > b || a != a) ? a : b; }
    template <class T> static T da(T a, T b, T) { return a > b ? T(1) : (a == b ? T(0.5) : T(0)); }
    template <class T> static T db(T a, T b, T) { return b > a ? T(1) : (a == b ? T(0.5) : T(0)); }
};
struct MinimumRule {
    static constexpr const char* name = "minimum";
    static constexpr const char* symbol = "min";
    template <class T> static T f(T a, T b) { return (a < b || a != a) ? a : b; }
    template <class T> static T da(T a, T b, T) { return a < b ? T(1) : (a == b ? T(0.5) : T(0)); }
    template <class T> static T db(T a, T b, T) { return b < a ? T(1) : (a == b ? T(0.5) : T(0)); }
};

// Both operands of the output's shape (the common case, and the whole of a recurrent
// model's elementwise work): one flat loop the compiler vectorises, whatever the shape
// (a 14x1 column walked as rows of one element would pay a loop per element).
template <class T>
bool same_shapes(const Matrix<T>& a, const Matrix<T>& b, const Matrix<T>& y) {
    return a.size() == y.size() && b.size() == y.size();
}

template <class T, class Rule, int side>
void backward_side(Tape<T>& tape, Node<T>& y, const Matrix<T>& A, const Matrix<T>& B) {
    const T* out = y.value.data();
    const T* g = y.grad.data();
    if (same_shapes(A, B, y.value)) {
        const T* __restrict a = A.data();
        const T* __restrict b = B.data();
        tape.grad_of(y, side).accumulate([&](std::size_t k) {
            return g[k] * (side == 0 ? Rule::da(a[k], b[k], out[k]) : Rule::db(a[k], b[k], out[k]));
        });
        return;
    }
    const kernels::Broadcast<T> a(A), b(B);
    const std::size_t cols = y.value.shape()[1];
    auto partial = [&](std::size_t i, std::size_t j) {
        const std::size_t k = i * cols + j;
        const T d = side == 0 ? Rule::da(a(i, j), b(i, j), out[k]) : Rule::db(a(i, j), b(i, j), out[k]);
        return g[k] * d;
    };
    auto sink = tape.grad_of(y, side);
    if (shape_of(sink.grad) == shape_of(y.value)) {
        sink.accumulate_2d(partial);
    } else {  // this input was broadcast: sum the full-shape partials back to its shape
        ensure_shape(y.work()[0], shape_of(y.value));
        kernels::fill(y.work()[0], partial);
        kernels::sum_to(y.work()[0], sink.grad, sink.overwrite);
    }
}

template <class T, class Rule>
void binary_backward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>&A = tape.input(y, 0), &B = tape.input(y, 1);
    if (tape.needs_grad(y, 0)) backward_side<T, Rule, 0>(tape, y, A, B);
    if (tape.needs_grad(y, 1)) backward_side<T, Rule, 1>(tape, y, A, B);
}

template <class T, class Rule>
void binary_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>&A = tape.input(y, 0), &B = tape.input(y, 1);
    if (same_shapes(A, B, y.value)) {
        const T* __restrict a = A.data();
        const T* __restrict b = B.data();
        T* __restrict out = y.value.data();
        for (std::size_t k = 0, n = y.value.size(); k < n; ++k) out[k] = Rule::f(a[k], b[k]);
        return;
    }
    const kernels::Broadcast<T> a(A), b(B);
    kernels::fill(y.value, [&](std::size_t i, std::size_t j) { return Rule::f(a(i, j), b(i, j)); });
}

// Checked in the forward, so that a replay over new values checks them too.
template <class T>
void div_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& divisor = tape.input(y, 1);
    const std::size_t cols = divisor.shape()[1];
    for (std::size_t k = 0; k < divisor.size(); ++k)
        if (divisor.data()[k] == T(0))
            ops::fail("div", "the divisor (" + to_string(shape_of(divisor)) + ") holds 0 at row " +
                                 std::to_string(k / cols) + ", column " + std::to_string(k % cols));
    binary_forward<T, DivRule>(tape, y);
}

template <class T, class Rule, ForwardFn<T> forward = binary_forward<T, Rule>>
Var<T> binary(const Var<T>& a, const Var<T>& b) {
    Tape<T>& tape = ops::common_tape<T>(Rule::name, {a, b});
    const Shape shape = ops::broadcast_shape(Rule::name, Rule::symbol, shape_of(ops::checked_value(tape, a)),
                                             shape_of(ops::checked_value(tape, b)));
    return tape.record_op(Rule::name, {a, b}, shape, forward, binary_backward<T, Rule>);
}

}  // namespace

template <class T> Var<T> add(const Var<T>& a, const Var<T>& b) { return binary<T, AddRule>(a, b); }
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b) { return binary<T, SubRule>(a, b); }
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b) { return binary<T, MulRule>(a, b); }
template <class T> Var<T> maximum(const Var<T>& a, const Var<T>& b) { return binary<T, MaximumRule>(a, b); }
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b) { return binary<T, MinimumRule>(a, b); }
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b) { return binary<T, DivRule, div_forward<T>>(a, b); }

#define TAPEGRAD_INSTANTIATE(T)               \
    template Var<T> add<T>(const Var<T>&, const Var<T>&); \
    template Var<T> sub<T>(const Var<T>&, const Var<T>&); \
    template Var<T> mul<T>(const Var<T>&, const Var<T>&); \
    template Var<T> maximum<T>(const Var<T>&, const Var<T>&); \
    template Var<T> minimum<T>(const Var<T>&, const Var<T>&); \
    template Var<T> div<T>(const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
