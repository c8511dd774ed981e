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
template <class T> Var<T> conv2d(Var<T> x, ImageShape image, Var<T> W, Var<T> b, Window window);
/// conv2d without a bias (PyTorch's bias=None).
template <class T> Var<T> conv2d(Var<T> x, ImageShape image, Var<T> W, Window window);
/// PyTorch's max_pool2d per channel: (C*H*W) x m to (C*H'*W') x m, padding counts as -inf.
/// Its gradient goes to the first maximum of each window (a NaN counts as the maximum).
template <class T> Var<T> max_pool2d(Var<T> x, ImageShape image, Window window);
/// max_pool2d with a kernel x kernel window and stride = kernel (PyTorch's default).
template <class T> Var<T> max_pool2d(Var<T> x, ImageShape image, std::size_t kernel);
/// PyTorch's avg_pool2d per channel: the window's sum / (kh*kw), padding counted as zeros
/// (count_include_pad=True, PyTorch's default).
template <class T> Var<T> avg_pool2d(Var<T> x, ImageShape image, Window window);
/// avg_pool2d with a kernel x kernel window and stride = kernel (PyTorch's default).
template <class T> Var<T> avg_pool2d(Var<T> x, ImageShape image, std::size_t kernel);

}  // namespace autodiff
