// matmul, linear (W @ A + b, fused) and transpose. Each backward is two GEMMs at most:
// dW = dZ @ A^T, dA = W^T @ dZ, db = sum of dZ over the examples.

#include <limits>

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/activation_rules.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

using kernels::gemm;
using kernels::Transpose;

namespace {

// The activation rules, each with the enumerator the entry stores in params[0].
struct Identity : ops::IdentityRule { static constexpr Activation activation = Activation::identity; };
struct Relu : ops::ReluRule { static constexpr Activation activation = Activation::relu; };
struct Sigmoid : ops::SigmoidRule { static constexpr Activation activation = Activation::sigmoid; };
struct Tanh : ops::TanhRule { static constexpr Activation activation = Activation::tanh; };

template <class T>
void check_inner(const char* op, const Var<T>& W, const Var<T>& A) {
    if (W.cols() != A.rows())
        ops::fail(op, "(" + to_string(W.shape()) + ") @ (" + to_string(A.shape()) + "): inner dimensions " +
                          std::to_string(W.cols()) + " and " + std::to_string(A.rows()) +
                          " differ (W is n_out x n_in, activations are features x examples)");
    // BLAS takes its sizes as int: one cast from a larger size_t wrapped, and the product was
    // silently wrong (an inner dimension of 2^32 + 1 multiplied one column; found by an attack).
    constexpr std::size_t blas_max = std::numeric_limits<int>::max();
    if (W.rows() > blas_max || W.cols() > blas_max || A.cols() > blas_max)
        ops::fail(op, "(" + to_string(W.shape()) + ") @ (" + to_string(A.shape()) +
                          "): a dimension exceeds BLAS's int sizes (" + std::to_string(blas_max) + ")");
}

// dW = dZ @ A^T and dA = W^T @ dZ for Z = W @ A (+ b): shared by matmul and both linears.
template <class T>
void matmul_backward_from(Tape<T>& tape, Node<T>& Z, const Matrix<T>& dZ) {
    const Matrix<T>& W = tape.input(Z, 0);
    const Matrix<T>& A = tape.input(Z, 1);
    if (tape.needs_grad(Z, 0)) {
        auto dW = tape.grad_of(Z, 0);
        gemm(dZ, Transpose::no, A, Transpose::yes, dW.grad, T(1), dW.beta());
    }
    if (tape.needs_grad(Z, 1)) {
        auto dA = tape.grad_of(Z, 1);
        gemm(W, Transpose::yes, dZ, Transpose::no, dA.grad, T(1), dA.beta());
    }
}

template <class T>
void matmul_backward(Tape<T>& tape, Node<T>& Z) {
    matmul_backward_from(tape, Z, Z.grad);
}

template <class T>
void matmul_forward(Tape<T>& tape, Node<T>& Z) {
    gemm(tape.input(Z, 0), Transpose::no, tape.input(Z, 1), Transpose::no, Z.value);
}

// Starts from b broadcast over the examples, then lets GEMM add W @ A in place.
template <class T>
void linear_forward(Tape<T>& tape, Node<T>& Z) {
    kernels::broadcast_column(tape.input(Z, 2).data(), Z.value);
    gemm(tape.input(Z, 0), Transpose::no, tape.input(Z, 1), Transpose::no, Z.value, T(1), T(1));
}

template <class T>
void linear_backward(Tape<T>& tape, Node<T>& Z) {
    matmul_backward(tape, Z);
    if (tape.needs_grad(Z, 2)) {
        auto db = tape.grad_of(Z, 2);
        kernels::sum_to(Z.grad, db.grad, db.overwrite);
    }
}

// Y = f(W @ A + b) in one entry: linear's forward (b broadcast, then GEMM with beta 1: the
// same rounding as the unfused pair), then f applied in place in one pass. With beta 0 and
// the bias added in the epilogue, OpenBLAS zero-fills the output first (dgemm_beta): the
// same number of memory passes, and 5% more instructions on the M workload (callgrind).
template <class T, class Rule>
void linear_activation_forward(Tape<T>& tape, Node<T>& Y) {
    linear_forward(tape, Y);
    T* __restrict y = Y.value.data();
    for (std::size_t k = 0; k < Y.value.size(); ++k) y[k] = Rule::f(y[k], T(0));
}

// dZ = dY * f'(Y) into work[0] in one flat pass, then db = the row sums of dZ as linear's
// backward takes them (sum_to), then dW and dA from dZ as for matmul. The rows are not
// summed as they are written: at an MLP's 10 x 10 that pass cost ~110 instructions a row
// (S step, callgrind), the flat pass and sum_to ~50.
template <class T, class Rule>
void linear_activation_backward(Tape<T>& tape, Node<T>& Y) {
    Matrix<T>& dZ = Y.work()[0];
    ensure_shape(dZ, shape_of(Y.value));
    const T* __restrict y = Y.value.data();
    const T* __restrict g = Y.grad.data();
    T* __restrict dz = dZ.data();
    for (std::size_t k = 0; k < dZ.size(); ++k) dz[k] = g[k] * Rule::df(T(0), y[k], T(0));
    if (tape.needs_grad(Y, 2)) {
        auto db = tape.grad_of(Y, 2);
        kernels::sum_to(dZ, db.grad, db.overwrite);
    }
    matmul_backward_from(tape, Y, dZ);
}

template <class T, class Rule>
Var<T> record_linear_activation(Tape<T>& tape, const Var<T>& W, const Var<T>& A, const Var<T>& b) {
    return ops::record_library_op(tape, "linear", {W, A, b}, {W.rows(), A.cols()}, linear_activation_forward<T, Rule>,
                          linear_activation_backward<T, Rule>,
                          [](Node<T>& Y) { Y.params()[0] = static_cast<std::uint32_t>(Rule::activation); });
}

// y(i, j) = x(j, i)
template <class T>
void transpose_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& x = tape.input(y, 0);
    const T* v = x.data();
    const std::size_t x_cols = x.shape()[1];
    kernels::fill(y.value, [&](std::size_t i, std::size_t j) { return v[j * x_cols + i]; });
}

// dx(i, j) = dy(j, i)
template <class T>
void transpose_backward(Tape<T>& tape, Node<T>& y) {
    auto dx = tape.grad_of(y, 0);
    const std::size_t rows = dx.grad.shape()[0], cols = dx.grad.shape()[1];
    const T* g = y.grad.data();
    dx.accumulate([&](std::size_t k) { return g[(k % cols) * rows + k / cols]; });
}

template <class T>
void check_linear(const Var<T>& W, const Var<T>& A, const Var<T>& b) {
    check_inner("linear", W, A);
    if (b.shape() != Shape{W.rows(), 1})
        ops::fail("linear", "b is " + to_string(b.shape()) + " but W is " + to_string(W.shape()) +
                                ": b must be " + std::to_string(W.rows()) + "x1 (one bias per output)");
}

}  // namespace

template <class T>
Var<T> matmul(const Var<T>& W, const Var<T>& A) {
    const ops::HeldTape<T> held("matmul", {W, A});
    Tape<T>& tape = held.tape();
    check_inner("matmul", W, A);
    return ops::record_library_op(tape, "matmul", {W, A}, {W.rows(), A.cols()}, matmul_forward<T>, matmul_backward<T>);
}

template <class T>
Var<T> linear(const Var<T>& W, const Var<T>& A, const Var<T>& b) {
    const ops::HeldTape<T> held("linear", {W, A, b});
    Tape<T>& tape = held.tape();
    check_linear(W, A, b);
    return ops::record_library_op(tape, "linear", {W, A, b}, {W.rows(), A.cols()}, linear_forward<T>, linear_backward<T>);
}

template <class T>
Var<T> linear(const Var<T>& W, const Var<T>& A, const Var<T>& b, Activation activation) {
    const ops::HeldTape<T> held("linear", {W, A, b});
    Tape<T>& tape = held.tape();
    check_linear(W, A, b);
    switch (activation) {
        case Activation::relu: return record_linear_activation<T, Relu>(tape, W, A, b);
        case Activation::sigmoid: return record_linear_activation<T, Sigmoid>(tape, W, A, b);
        case Activation::tanh: return record_linear_activation<T, Tanh>(tape, W, A, b);
        case Activation::identity: return record_linear_activation<T, Identity>(tape, W, A, b);
    }
    // A value cast from an integer outside the enum: not silently the identity.
    ops::fail("linear", "unknown activation " + std::to_string(static_cast<int>(activation)) +
                            " (relu, sigmoid, tanh or identity)");
}

template <class T>
Var<T> transpose(const Var<T>& x) {
    const ops::HeldTape<T> held("transpose", {x});
    Tape<T>& tape = held.tape();
    return ops::record_library_op(tape, "transpose", {x}, {x.cols(), x.rows()}, transpose_forward<T>, transpose_backward<T>);
}

#define TAPEGRAD_INSTANTIATE(T)                      \
    template Var<T> matmul<T>(const Var<T>&, const Var<T>&);         \
    template Var<T> linear<T>(const Var<T>&, const Var<T>&, const Var<T>&); \
    template Var<T> linear<T>(const Var<T>&, const Var<T>&, const Var<T>&, Activation); \
    template Var<T> transpose<T>(const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
