#pragma once
/// @file
/// Every differentiable op of the engine. Each is defined in one place under autodiff/ops/,
/// its forward and backward side by side. Shapes follow the notebook: activations are
/// features x examples (a column is an example), weights are n_out x n_in.

#include "autodiff/tape.hpp"

namespace autodiff {

// ---- linear algebra (ops/linear_algebra.cpp) ----
template <class T> Var<T> matmul(Var<T> a, Var<T> b);                  ///< a @ b
template <class T> Var<T> linear(Var<T> W, Var<T> A, Var<T> b);        ///< W @ A + b, b is n_out x 1
/// The activations the fused linear applies in its epilogue.
enum class Activation { relu, sigmoid, tanh, identity };
/// activation(W @ A + b) as one tape entry: the bias and the activation in one pass after the
/// GEMM, and backward's activation derivative in one pass with the bias gradient's row sums.
template <class T> Var<T> linear(Var<T> W, Var<T> A, Var<T> b, Activation activation);
template <class T> Var<T> transpose(Var<T> x);

// ---- elementwise with 2-D broadcasting (ops/elementwise.cpp) ----
/// Shapes broadcast as in NumPy restricted to 2-D: each dimension equal, or 1 on one side
/// (n x m + n x 1 is the notebook's "+ b"; 1 x m rows and 1 x 1 scalars work too).
template <class T> Var<T> add(Var<T> a, Var<T> b);
template <class T> Var<T> sub(Var<T> a, Var<T> b);
template <class T> Var<T> mul(Var<T> a, Var<T> b);
template <class T> Var<T> div(Var<T> a, Var<T> b);

// ---- unary (ops/unary.cpp) ----
template <class T> Var<T> neg(Var<T> x);
template <class T> Var<T> scale(Var<T> x, T factor);
template <class T> Var<T> exp(Var<T> x);
template <class T> Var<T> log(Var<T> x);       ///< throws on negative inputs
template <class T> Var<T> relu(Var<T> x);      ///< derivative 0 at 0, as the notebook's Z > 0
template <class T> Var<T> sigmoid(Var<T> x);
template <class T> Var<T> tanh(Var<T> x);

// ---- softmax family over axis 0: each column is an example (ops/softmax.cpp) ----
template <class T> Var<T> softmax(Var<T> z);
template <class T> Var<T> log_softmax(Var<T> z);
/// Mean over the m examples of -sum_k Y[k, j] log softmax(Z)[k, j], fused and stable.
/// Its gradient is (softmax(Z) - Y) / m: the notebook's dZ3 = A3 - Y with its 1/m.
template <class T> Var<T> softmax_cross_entropy(Var<T> logits, const Matrix<T>& Y);
template <class T> Var<T> softmax_cross_entropy(Var<T> logits, const Labels& classes);

// ---- reductions and losses (ops/reductions.cpp) ----
template <class T> Var<T> sum(Var<T> x);                 ///< 1 x 1
template <class T> Var<T> sum(Var<T> x, int axis);       ///< axis 0: 1 x m, axis 1: n x 1
template <class T> Var<T> mean(Var<T> x);
template <class T> Var<T> mean(Var<T> x, int axis);
template <class T> Var<T> mse(Var<T> prediction, Var<T> target);  ///< mean of squared differences, 1 x 1

// ---- operators, NumPy's meanings (* is elementwise; matmul is spelled out) ----
template <class T> Var<T> operator+(Var<T> a, Var<T> b) { return add(a, b); }
template <class T> Var<T> operator-(Var<T> a, Var<T> b) { return sub(a, b); }
template <class T> Var<T> operator*(Var<T> a, Var<T> b) { return mul(a, b); }
template <class T> Var<T> operator/(Var<T> a, Var<T> b) { return div(a, b); }
template <class T> Var<T> operator-(Var<T> x) { return neg(x); }
template <class T> Var<T> operator*(Var<T> x, T factor) { return scale(x, factor); }
template <class T> Var<T> operator*(T factor, Var<T> x) { return scale(x, factor); }

}  // namespace autodiff
