// add, sub, mul, div, maximum, minimum with 2-D broadcasting. One rule per op gives the value and the two
// partial derivatives; broadcasting forward and its reduction backward are shared.

#include "autodiff/flat_step.hpp"
#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// y = f(a, b); dy/da and dy/db, given a, b and y, and which of them the two read
// (autodiff/flat_step.hpp: a Replay keeps a value no derivative reads only while its forward
// readers need it).
struct AddRule {
    static constexpr const char* name = "add";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    static constexpr const char* symbol = "+";
    template <class T> static T f(T a, T b) { return a + b; }
    template <class T> static T da(T, T, T) { return T(1); }
    template <class T> static T db(T, T, T) { return T(1); }
};
struct SubRule {
    static constexpr const char* name = "sub";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    static constexpr const char* symbol = "-";
    template <class T> static T f(T a, T b) { return a - b; }
    template <class T> static T da(T, T, T) { return T(1); }
    template <class T> static T db(T, T, T) { return T(-1); }
};
struct MulRule {
    static constexpr const char* name = "mul";
    static constexpr std::uint8_t derivative_reads = backward_reads::input0 | backward_reads::input1;
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
    static constexpr std::uint8_t derivative_reads = backward_reads::input0 | backward_reads::input1;
    static constexpr const char* symbol = "max";
    template <class T> static T f(T a, T b) { return (a > b || a != a) ? a : b; }
    template <class T> static T da(T a, T b, T) { return a > b ? T(1) : (a == b ? T(0.5) : T(0)); }
    template <class T> static T db(T a, T b, T) { return b > a ? T(1) : (a == b ? T(0.5) : T(0)); }
};
struct MinimumRule {
    static constexpr const char* name = "minimum";
    static constexpr std::uint8_t derivative_reads = backward_reads::input0 | backward_reads::input1;
    static constexpr const char* symbol = "min";
    template <class T> static T f(T a, T b) { return (a < b || a != a) ? a : b; }
    template <class T> static T da(T a, T b, T) { return a < b ? T(1) : (a == b ? T(0.5) : T(0)); }
    template <class T> static T db(T a, T b, T) { return b < a ? T(1) : (a == b ? T(0.5) : T(0)); }
};

// The op's same-shape arithmetic, on raw buffers (autodiff/flat_step.hpp): the entry's
// forward and backward below call these, and so does a Replay, which runs them without the
// entry. Side 0's gradient is complete before side 1's is started: x * x adds both to one buffer.
template <class T, class Rule>
void binary_flat_forward(const FlatStep<T>& step) {
    const T* __restrict a = step.x[0];
    const T* __restrict b = step.x[1];
    T* __restrict out = step.y;
    for (std::size_t k = 0; k < step.n; ++k) out[k] = Rule::f(a[k], b[k]);
}

template <class T, class Rule>
[[gnu::always_inline]] inline void binary_flat_backward(const FlatStep<T>& step, const bool* overwrite) {
    const T *a = step.x[0], *b = step.x[1], *out = step.y, *g = step.gy;
    if (step.gx[0] != nullptr)
        accumulate_flat(step.gx[0], overwrite[0], step.n, [&](std::size_t k) { return g[k] * Rule::da(a[k], b[k], out[k]); });
    if (step.gx[1] != nullptr)
        accumulate_flat(step.gx[1], overwrite[1], step.n, [&](std::size_t k) { return g[k] * Rule::db(a[k], b[k], out[k]); });
}

// Both operands of the output's shape (the common case, and the whole of a recurrent
// model's elementwise work): one flat loop the compiler vectorises, whatever the shape
// (a 14x1 column walked as rows of one element would pay a loop per element).
template <class T>
bool same_shapes(const Matrix<T>& a, const Matrix<T>& b, std::size_t n) {
    return a.size() == n && b.size() == n;
}

template <class T>
[[gnu::always_inline]] inline FlatStep<T> binary_step(const Matrix<T>& A, const Matrix<T>& B, Node<T>& y) {
    return FlatStep<T>({A.data(), B.data()}, Tape<T>::own_value(y), Tape<T>::own_grad(y), {}, T(0));
}

// An operand broadcast to the output's shape: its partials are summed back to its shape.
template <class T, class Rule, int side>
void broadcast_backward_side(Tape<T>& tape, Node<T>& y, const Matrix<T>& A, const Matrix<T>& B) {
    const T* out = y.value.data();
    const T* g = y.grad.data();
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
    bool overwrite[2] = {false, false};
    if (std::optional<FlatStep<T>> step = tape.template flat_entry_step<2>(y, overwrite))
        return run_flat(*step, Tape<T>::own_size(y), [&](const FlatStep<T>& piece) { binary_flat_backward<T, Rule>(piece, overwrite); });
    // Inline entries have their inputs' size (Tape::record_flat), which backward() keeps.
    if (y.in_line()) ops::fail_input_resized(Rule::name);
    const Matrix<T>&A = tape.input(y, 0), &B = tape.input(y, 1);
    if (tape.needs_grad(y, 0)) broadcast_backward_side<T, Rule, 0>(tape, y, A, B);
    if (tape.needs_grad(y, 1)) broadcast_backward_side<T, Rule, 1>(tape, y, A, B);
}

template <class T, class Rule>
void binary_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>&A = tape.input(y, 0), &B = tape.input(y, 1);
    if (same_shapes(A, B, Tape<T>::own_size(y))) {
        FlatStep<T> step = binary_step(A, B, y);
        return run_flat(step, Tape<T>::own_size(y), binary_flat_forward<T, Rule>);
    }
    if (y.in_line()) ops::fail_input_resized(Rule::name);
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
    // div's forward checks its divisor: a Replay runs that, not the flat kernels.
    if constexpr (forward == binary_forward<T, Rule>) {
        static const bool registered = (detail::register_flat_kernels<T>(
            forward, {{binary_flat_forward<T, Rule>, binary_flat_backward<T, Rule>}, Rule::derivative_reads}), true);
        (void)registered;
    }
    if constexpr (forward == binary_forward<T, Rule>) {
        std::optional<Var<T>> same_shapes = a.tape(Rule::name).record_flat(
            Rule::name, std::array<const Var<T>*, 2>{&a, &b}, forward, binary_backward<T, Rule>,
            [](const FlatStep<T>& step) { binary_flat_forward<T, Rule>(step); }, T(0), T(0), /*library_code=*/true);
        if (same_shapes) return std::move(*same_shapes);
    }
    const ops::HeldTape<T> held(Rule::name, {a, b});
    Tape<T>& tape = held.tape();
    const Shape shape = ops::broadcast_shape(Rule::name, Rule::symbol, shape_of(ops::checked_value(tape, a)),
                                             shape_of(ops::checked_value(tape, b)));
    return ops::record_library_op(tape, Rule::name, {a, b}, shape, forward, binary_backward<T, Rule>);
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
