#pragma once
/// @file
/// Every differentiable op of the engine. Each is defined in one place under autodiff/ops/,
/// its forward and backward side by side. Shapes follow the notebook: activations are
/// features x examples (a column is an example), weights are n_out x n_in.

#include <type_traits>
#include <vector>

#include "autodiff/random.hpp"
#include "autodiff/tape.hpp"

namespace autodiff {

namespace detail {
template <class T>
struct non_deduced {
    using type = T;
};
}  // namespace detail

/// An op's scalar parameter: converted to the tape's T and never used to deduce T, so that
/// pow(x, 2.0) or dropout(x, 0.5, rng) works on a Var<float> too.
template <class T>
using scalar_of = typename detail::non_deduced<T>::type;

// ---- linear algebra (ops/linear_algebra.cpp) ----
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);                  ///< a @ b
template <class T> Var<T> linear(const Var<T>& W, const Var<T>& A, const Var<T>& b);        ///< W @ A + b, b is n_out x 1
/// The activations the fused linear applies to its output.
enum class Activation { relu, sigmoid, tanh, identity };
/// activation(W @ A + b) as one tape entry, equal bit for bit to activation(linear(W, A, b)):
/// the activation in place after the GEMM, and in backward the activation's derivative in one
/// pass with the bias gradient's row sums.
template <class T> Var<T> linear(const Var<T>& W, const Var<T>& A, const Var<T>& b, Activation activation);
template <class T> Var<T> transpose(const Var<T>& x);

// ---- elementwise with 2-D broadcasting (ops/elementwise.cpp) ----
/// Shapes broadcast as in NumPy restricted to 2-D: each dimension equal, or 1 on one side
/// (n x m + n x 1 is the notebook's "+ b"; 1 x m rows and 1 x 1 scalars work too).
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);

// ---- unary (ops/unary.cpp) ----
template <class T> Var<T> neg(const Var<T>& x);
template <class T> Var<T> scale(const Var<T>& x, scalar_of<T> factor);
template <class T> Var<T> exp(const Var<T>& x);
template <class T> Var<T> log(const Var<T>& x);       ///< throws on negative inputs
template <class T> Var<T> relu(const Var<T>& x);      ///< derivative 0 at 0, as the notebook's Z > 0
template <class T> Var<T> sigmoid(const Var<T>& x);
template <class T> Var<T> tanh(const Var<T>& x);

// ---- softmax family over axis 0: each column is an example (ops/softmax.cpp) ----
template <class T> Var<T> softmax(const Var<T>& z);
template <class T> Var<T> log_softmax(const Var<T>& z);
/// softmax along axis 0 (each column, the default) or axis 1 (each row): torch.softmax(z, dim=axis).
template <class T> Var<T> softmax(const Var<T>& z, int axis);
/// log_softmax along axis 0 (each column) or axis 1 (each row): torch.log_softmax(z, dim=axis).
template <class T> Var<T> log_softmax(const Var<T>& z, int axis);
/// Mean over the m examples of -sum_k Y[k, j] log softmax(Z)[k, j], fused and stable.
/// Its gradient is (softmax(Z) - Y) / m: the notebook's dZ3 = A3 - Y with its 1/m.
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Matrix<T>& Y);
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Labels& classes);

// ---- reductions and losses (ops/reductions.cpp) ----
template <class T> Var<T> sum(const Var<T>& x);                 ///< 1 x 1
template <class T> Var<T> sum(const Var<T>& x, int axis);       ///< axis 0: 1 x m, axis 1: n x 1
template <class T> Var<T> mean(const Var<T>& x);
template <class T> Var<T> mean(const Var<T>& x, int axis);
template <class T> Var<T> mse(const Var<T>& prediction, const Var<T>& target);  ///< mean of squared differences, 1 x 1

// ---- a handle and a scalar (ops/elementwise_math.cpp); the operators below call these ----
template <class T> Var<T> add_scalar(const Var<T>& x, scalar_of<T> c);   ///< x + c
template <class T> Var<T> rsub_scalar(scalar_of<T> c, const Var<T>& x);  ///< c - x
template <class T> Var<T> div_scalar(const Var<T>& x, scalar_of<T> c);   ///< x / c; throws if c is 0
template <class T> Var<T> rdiv_scalar(scalar_of<T> c, const Var<T>& x);  ///< c / x; throws if x holds a 0

// ---- elementwise functions (ops/elementwise_math.cpp) ----
// At a kink the derivative is PyTorch's: stated per op, checked against PyTorch's fixtures.
template <class T> Var<T> square(const Var<T>& x);              ///< x^2
template <class T> Var<T> sqrt(const Var<T>& x);                ///< throws on x < 0; d/dx at 0 is +inf as in PyTorch
template <class T> Var<T> pow(const Var<T>& x, scalar_of<T> exponent);     ///< x^p; d/dx = p x^(p-1), 0 when p = 0. Throws on x < 0 with non-integer p, on 0 with p < 0
template <class T> Var<T> abs(const Var<T>& x);                 ///< d/dx = sign(x), 0 at 0
template <class T> Var<T> clamp(const Var<T>& x, scalar_of<T> lo, scalar_of<T> hi);   ///< d/dx = 1 on [lo, hi] (bounds included), else 0
template <class T> Var<T> log1p(const Var<T>& x);               ///< log(1 + x), throws on x < -1
template <class T> Var<T> leaky_relu(const Var<T>& x, scalar_of<T> negative_slope = T(0.01));  ///< d/dx at 0 is negative_slope
template <class T> Var<T> elu(const Var<T>& x, scalar_of<T> alpha = T(1));                     ///< alpha (e^x - 1) below 0; d/dx at 0 is alpha
template <class T> Var<T> gelu(const Var<T>& x);                ///< exact x Phi(x) with the normal CDF Phi (PyTorch's default, not the tanh form)
template <class T> Var<T> softplus(const Var<T>& x, scalar_of<T> beta = T(1), scalar_of<T> threshold = T(20));  ///< log(1 + e^(beta x)) / beta; x where beta x > threshold
template <class T> Var<T> silu(const Var<T>& x);                ///< x sigmoid(x)
/// max(a, b) with broadcasting as add; at a tie each side gets half the gradient (PyTorch).
template <class T> Var<T> maximum(const Var<T>& a, const Var<T>& b);
/// min(a, b) with broadcasting as add; at a tie each side gets half the gradient (PyTorch).
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b);
/// mask != 0 ? a : b, elementwise, mask, a and b broadcasting together as in add. The mask gets no gradient.
template <class T> Var<T> where(const Var<T>& mask, const Var<T>& a, const Var<T>& b);
template <class T> Var<T> where(const Matrix<T>& mask, const Var<T>& a, const Var<T>& b);  ///< the mask recorded as a constant

// ---- structure (ops/structure.cpp) ----
/// parts joined along axis 0 (stacking features: every part has the same columns) or 1
/// (stacking examples: the same rows). One entry per 3 parts (an entry has at most 3 inputs).
template <class T> Var<T> concat(const std::vector<Var<T>>& parts, int axis);
template <class T> Var<T> concat(std::initializer_list<Var<T>> parts, int axis);  ///< concat({a, b}, 0)
/// Rows (axis 0) or columns (axis 1) begin .. end-1 of x, as x[begin:end] or x[:, begin:end].
/// Its backward writes the gradient of that range only.
template <class T> Var<T> slice(const Var<T>& x, int axis, std::size_t begin, std::size_t end);
/// Columns (axis 1) or rows (axis 0) of table picked by ids, repeats allowed: with an
/// n x vocab table and m ids, axis 1 gives n x m (an embedding lookup, one column per
/// example); a vocab x n table with axis 0 gives m x n. The backward scatter-adds.
template <class T> Var<T> gather(const Var<T>& table, const Labels& ids, int axis);
/// The same values in another shape of equal size, in row-major order (torch.reshape).
template <class T> Var<T> reshape(const Var<T>& x, Shape shape);
/// Largest element over axis 0 (1 x m), axis 1 (n x 1); the gradient goes to the first
/// largest element of each (torch.max(x, dim)); a NaN counts as the largest.
template <class T> Var<T> max(const Var<T>& x, int axis);
template <class T> Var<T> max(const Var<T>& x);  ///< the largest element, 1 x 1

// ---- losses (ops/losses.cpp); each the mean over every element or example, 1 x 1 ----
/// mean of max(z, 0) - z y + log(1 + e^-|z|): binary cross-entropy of sigmoid(z), stable for any z.
template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets);
template <class T> Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Matrix<T>& targets);
/// -mean_j log_probs[classes[j], j]: log_probs is classes x examples (log_softmax's output).
template <class T> Var<T> nll_loss(const Var<T>& log_probs, const Labels& classes);
/// mean of 0.5 d^2 where |d| < 1, |d| - 0.5 elsewhere, d = prediction - target (smooth_l1, beta 1).
template <class T> Var<T> huber(const Var<T>& prediction, const Var<T>& target);
template <class T> Var<T> huber(const Var<T>& prediction, const Matrix<T>& target);
template <class T> Var<T> mse(const Var<T>& prediction, const Matrix<T>& target);
/// Targets as a handle (probabilities per column; they get the gradient -log_softmax(Z)/m).
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Var<T>& targets);
/// With label smoothing eps: the targets become (1 - eps) Y + eps / classes (PyTorch's label_smoothing).
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Labels& classes, scalar_of<T> label_smoothing);
template <class T> Var<T> softmax_cross_entropy(const Var<T>& logits, const Matrix<T>& Y, scalar_of<T> label_smoothing);

// ---- normalisation and regularisation (ops/normalization.cpp, ops/dropout.cpp) ----
/// Each column (example) normalised over its n features: (x - mean) / sqrt(var + eps),
/// var biased (divided by n), as torch.nn.functional.layer_norm over the feature dimension.
template <class T> Var<T> layer_norm(const Var<T>& x, scalar_of<T> eps = T(1e-5));
/// The same, then gain * x_hat + bias with gain and bias n x 1 (one per feature).
template <class T> Var<T> layer_norm(const Var<T>& x, const Var<T>& gain, const Var<T>& bias, scalar_of<T> eps = T(1e-5));
/// Each row (feature) normalised over the m examples of the batch (training form: batch
/// statistics, biased variance), as torch.nn.functional.batch_norm(training=True). Needs m > 1.
template <class T> Var<T> batch_norm(const Var<T>& x, scalar_of<T> eps = T(1e-5));
/// The same, then gain * x_hat + bias with gain and bias n x 1.
template <class T> Var<T> batch_norm(const Var<T>& x, const Var<T>& gain, const Var<T>& bias, scalar_of<T> eps = T(1e-5));
/// The batch statistics a batch_norm output was computed with, n x 1 each, the variance
/// biased (divided by m; PyTorch's running_var is updated with the unbiased one, times m/(m-1)).
template <class T>
struct BatchStatistics {
    const Matrix<T>& mean;  ///< per feature
    const Matrix<T>& var;   ///< per feature, biased
};
/// Throws unless y is a live handle recorded by batch_norm.
template <class T> BatchStatistics<T> batch_norm_statistics(const Var<T>& y);
/// Zeroes each element with probability p and scales the others by 1 / (1 - p) (inverted
/// dropout), the mask drawn from rng at rng.counter .. rng.counter + size - 1; advances
/// rng.counter by x's size. 0 <= p < 1. Call it in training only (a layer's eval mode skips it).
template <class T> Var<T> dropout(const Var<T>& x, scalar_of<T> p, CounterRng& rng);

// ---- operators, NumPy's meanings (* is elementwise; matmul is spelled out) ----
namespace detail {
template <class A, class B>
constexpr bool same_precision() {
    static_assert(std::is_same<A, B>::value,
                  "tapegrad: an op mixes Var<float> and Var<double>; record both on one Tape<T> (convert the "
                  "Matrix with xt::cast<T> before tape.constant/leaf)");
    return std::is_same<A, B>::value;
}
template <class S>
using if_scalar = std::enable_if_t<std::is_arithmetic<S>::value, int>;
}  // namespace detail

template <class A, class B> Var<A> operator+(Var<A> a, Var<B> b) {
    if constexpr (detail::same_precision<A, B>()) return add(a, b); else return a;
}
template <class A, class B> Var<A> operator-(Var<A> a, Var<B> b) {
    if constexpr (detail::same_precision<A, B>()) return sub(a, b); else return a;
}
template <class A, class B> Var<A> operator*(Var<A> a, Var<B> b) {
    if constexpr (detail::same_precision<A, B>()) return mul(a, b); else return a;
}
template <class A, class B> Var<A> operator/(Var<A> a, Var<B> b) {
    if constexpr (detail::same_precision<A, B>()) return div(a, b); else return a;
}
template <class T> Var<T> operator-(const Var<T>& x) { return neg(x); }
// Any arithmetic scalar (int, float, double) is converted to the tape's T: Var<float> + 1.0 works.
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator+(const Var<T>& x, S c) { return add_scalar(x, static_cast<T>(c)); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator+(S c, const Var<T>& x) { return add_scalar(x, static_cast<T>(c)); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator-(const Var<T>& x, S c) { return add_scalar(x, -static_cast<T>(c)); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator-(S c, const Var<T>& x) { return rsub_scalar(static_cast<T>(c), x); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator*(const Var<T>& x, S c) { return scale(x, static_cast<T>(c)); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator*(S c, const Var<T>& x) { return scale(x, static_cast<T>(c)); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator/(const Var<T>& x, S c) { return div_scalar(x, static_cast<T>(c)); }
template <class T, class S, detail::if_scalar<S> = 0> Var<T> operator/(S c, const Var<T>& x) { return rdiv_scalar(static_cast<T>(c), x); }

// ---- convolution and pooling over images stored one per column (ops/convolution.cpp, ops/pooling.cpp) ----

/// The shape of the images a matrix holds, one image per column, features in C x H x W order:
/// pixel (c, i, j) is row (c*H + i)*W + j, so a batch of m images is (C*H*W) x m
/// (Fashion-MNIST's 784 x m is {1, 28, 28}).
struct ImageShape {
    std::size_t channels = 1;  ///< C
    std::size_t height = 1;    ///< H
    std::size_t width = 1;     ///< W
    std::size_t size() const { return channels * height * width; }  ///< rows of a batch: C*H*W
};

/// A sliding window, as PyTorch's int arguments: a kernel of height x width moved by `stride`
/// along both axes over the image zero-padded by `padding` on every side.
/// Output size per axis: (H + 2*padding - height) / stride + 1 (rounded down).
/// Note: the stride is 1 unless given; the pools' short forms take stride = kernel size.
struct Window {
    std::size_t height = 1;   ///< kernel rows (kh)
    std::size_t width = 1;    ///< kernel columns (kw)
    std::size_t stride = 1;   ///< step between windows, both axes, at least 1
    std::size_t padding = 0;  ///< zeros added on each side (the pools pad with -inf / count zeros)
};

/// {out_channels, H', W'}: the image shape conv2d makes of `in`. Throws autodiff::Error
/// (naming conv2d) if the window does not fit the padded image or a size is 0.
ImageShape conv2d_output_shape(ImageShape in, std::size_t out_channels, Window window);
/// {C, H', W'}: the image shape max_pool2d and avg_pool2d make of `in`; throws likewise
/// (padding must be at most half the kernel, PyTorch's rule).
ImageShape pool2d_output_shape(ImageShape in, Window window);

/// PyTorch's conv2d (cross-correlation) over x, (C_in*H*W) x m holding images of shape `image`.
/// W is C_out x (C_in*kh*kw), row o being filter o flattened in (c, ki, kj) order (PyTorch's
/// weight.reshape(C_out, -1)); b is C_out x 1. The output is (C_out*H'*W') x m, C x H x W order.
template <class T> Var<T> conv2d(const Var<T>& x, ImageShape image, const Var<T>& W, const Var<T>& b, Window window);
/// conv2d without a bias (PyTorch's bias=None).
template <class T> Var<T> conv2d(const Var<T>& x, ImageShape image, const Var<T>& W, Window window);
/// PyTorch's max_pool2d per channel: (C*H*W) x m to (C*H'*W') x m, padding counts as -inf.
/// Its gradient goes to the first maximum of each window (a NaN counts as the maximum).
template <class T> Var<T> max_pool2d(const Var<T>& x, ImageShape image, Window window);
/// max_pool2d with a kernel x kernel window and stride = kernel (PyTorch's default).
template <class T> Var<T> max_pool2d(const Var<T>& x, ImageShape image, std::size_t kernel);
/// PyTorch's avg_pool2d per channel: the window's sum / (kh*kw), padding counted as zeros
/// (count_include_pad=True, PyTorch's default).
template <class T> Var<T> avg_pool2d(const Var<T>& x, ImageShape image, Window window);
/// avg_pool2d with a kernel x kernel window and stride = kernel (PyTorch's default).
template <class T> Var<T> avg_pool2d(const Var<T>& x, ImageShape image, std::size_t kernel);

}  // namespace autodiff
