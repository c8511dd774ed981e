#pragma once
/// @file
/// @brief User-defined ops as a forward and a backward, like torch.autograd.Function.
///
/// An op is a struct with a name, a forward that computes the output from the inputs'
/// values, and a backward that returns d loss / d input for one input at a time:
/// @code
/// struct Softplus {
///     static constexpr const char* name = "softplus";
///     template <class T>
///     static autodiff::Matrix<T> forward(autodiff::OpContext<T>& ctx, const autodiff::Matrix<T>& x);
///     template <class T>
///     static autodiff::Matrix<T> backward(const autodiff::GradContext<T>& ctx, int input);
/// };
/// autodiff::Var<double> y = autodiff::apply<Softplus>(x);
/// @endcode
/// apply() records one tape entry. Its backward runs only when some input needs a
/// gradient, asks backward() only for those inputs, checks that each returned gradient
/// has its input's shape, and adds it to what the input already has (so a reused input,
/// op(x, x), sums correctly). Check a new op with autodiff::gradcheck.
///
/// This wrapper allocates the output and each gradient. An op on a hot path can instead
/// call Tape::record directly, as the built-in ops do (docs/custom_ops.md shows both).

#include <string>
#include <type_traits>
#include <utility>

#include "autodiff/error.hpp"
#include "autodiff/ops/checks.hpp"
#include "autodiff/tape.hpp"

namespace autodiff {

/// What a custom op's forward leaves for its backward (torch's ctx.save_for_backward).
/// The inputs and the output are kept by the tape anyway: save only what is extra.
template <class T>
struct OpContext {
    Matrix<T> saved;  ///< any matrix the backward needs (stored on the tape entry)
    T scalar{};       ///< any constant the backward needs (an epsilon, a factor...)
};

/// What a custom op's backward reads: the inputs, the output, what forward saved, and
/// the gradient flowing into the output.
template <class T>
class GradContext {
public:
    /// Wraps one tape entry during the backward sweep (apply() builds it).
    GradContext(const Tape<T>& tape, const Node<T>& node) : tape_(tape), node_(node) {}
    /// Not copyable: it refers to the tape's entry, valid during this backward call only. A
    /// copy kept by the op (to look at later) read a reset or destroyed tape with no error.
    GradContext(const GradContext&) = delete;
    GradContext& operator=(const GradContext&) = delete;
    /// The value of the i-th input, as it was in the forward pass.
    const Matrix<T>& input(int i) const { return tape_.input(node_, i); }
    /// The op's output value.
    const Matrix<T>& output() const { return node_.value; }
    /// d loss / d output, of the output's shape.
    const Matrix<T>& grad_output() const { return node_.grad; }
    /// OpContext::saved as the forward left it. Throws autodiff::Error, naming the op, if the
    /// forward saved nothing: the empty matrix would be indexed out of bounds or fail to
    /// broadcast with an error that names neither the op nor the forward.
    const Matrix<T>& saved() const {
        const Matrix<T>& s = node_.saved();
        if (s.size() == 0)
            throw Error(std::string(node_.op) + ": backward reads saved(), but forward saved nothing (set ctx.saved in forward)");
        return s;
    }
    /// OpContext::scalar as the forward left it.
    T scalar() const { return node_.scalar; }
    /// Whether the i-th input needs a gradient (backward() is only asked for those).
    bool needs_grad(int i) const { return tape_.needs_grad(node_, i); }
    /// How many inputs the op has.
    int arity() const { return node_.arity; }

private:
    const Tape<T>& tape_;
    const Node<T>& node_;
};

namespace detail {

template <class Op, class T>
void custom_backward(Tape<T>& tape, Node<T>& node) {
    const GradContext<T> ctx(tape, node);
    for (int i = 0; i < node.arity; ++i) {
        if (!tape.needs_grad(node, i)) continue;
        const Matrix<T> g = Op::backward(ctx, i);
        if (shape_of(g) != shape_of(ctx.input(i)))
            throw Error(std::string(Op::name) + ": backward returned a " + to_string(shape_of(g)) +
                        " gradient for input " + std::to_string(i) + ", which is " + to_string(shape_of(ctx.input(i))) +
                        " (a gradient has its input's shape)");
        const T* p = g.data();
        tape.grad_of(node, i).accumulate([p](std::size_t k) { return p[k]; });
    }
}

}  // namespace detail

/// Records the custom op `Op` on its inputs' tape (one to three inputs, all on one tape)
/// and returns the output's handle. Throws autodiff::Error, naming Op::name, for inputs
/// on different tapes, stale handles, or an empty output.
template <class Op, class T, class... More>
Var<T> apply(Var<T> first, More... more) {
    static_assert(sizeof...(More) <= 2, "a custom op takes at most 3 inputs");
    static_assert((std::is_same_v<More, Var<T>> && ...), "every input of a custom op is a Var<T> of one T");
    // Held from the checks on: Op::forward reads the inputs' values (ops/checks.hpp).
    const ops::HeldTape<T> held(Op::name, {first, more...});
    Tape<T>& tape = held.tape();
    OpContext<T> ctx;
    Matrix<T> out = held.run_foreign([&] { return Op::forward(ctx, first.value(), more.value()...); });
    if (out.size() == 0) throw Error(std::string(Op::name) + ": forward returned an empty " + to_string(shape_of(out)) + " matrix");
    const Shape shape = shape_of(out);
    return tape.record(Op::name, {first, more...}, shape, detail::custom_backward<Op, T>, [&](Node<T>& node) {
        node.value = std::move(out);
        node.saved() = std::move(ctx.saved);
        node.scalar = ctx.scalar;
    });
}

}  // namespace autodiff
