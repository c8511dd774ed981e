#pragma once
// Layer normalisation over axis 0 (each column, one example, to mean 0 and variance 1),
// written straight on Tape::record (as the built-in ops are on its replayable form, record_op), with a captureless backward
// that reads the tape entry and adds into the input's gradient, allocating nothing after
// the first step. Shared by examples/custom_op.cpp and tests/autodiff/custom_op_test.cpp.
//
//   y = (x - mean_j) / sigma_j,  sigma_j = sqrt(var_j + eps)   per column j, n rows
//   dx = (dy - mean(dy) - y * mean(dy * y)) / sigma            per column

#include <cmath>
#include <string>

#include "autodiff/error.hpp"
#include "autodiff/tape.hpp"

namespace example {

template <class T>
autodiff::Var<T> layer_norm(autodiff::Var<T> x, T eps = T(1e-5)) {
    using autodiff::Matrix;
    using autodiff::Node;
    using autodiff::Tape;
    // eps 0 made a constant column 0/0 = NaN, and a negative one the root of a negative
    // number, with no error.
    if (!(std::isfinite(eps) && eps > T(0)))
        throw autodiff::Error("layer_norm: eps must be a positive finite number, got " + std::to_string(double(eps)));
    // The backward reads the output y (node.value) and 1/sigma per column (node.saved()).
    auto backward = [](Tape<T>& tape, Node<T>& node) {
        const std::size_t n = node.value.shape()[0], m = node.value.shape()[1];
        const Matrix<T>& y = node.value;
        const Matrix<T>& dy = node.grad;
        Matrix<T>& dx = node.work()[0];  // a workspace kept on the entry, reused next step
        autodiff::ensure_shape(dx, {n, m});
        for (std::size_t j = 0; j < m; ++j) {
            T mean_dy = 0, mean_dy_y = 0;
            for (std::size_t i = 0; i < n; ++i) {
                mean_dy += dy(i, j);
                mean_dy_y += dy(i, j) * y(i, j);
            }
            mean_dy /= T(n);
            mean_dy_y /= T(n);
            for (std::size_t i = 0; i < n; ++i) dx(i, j) = (dy(i, j) - mean_dy - y(i, j) * mean_dy_y) * node.saved()(0, j);
        }
        const T* d = dx.data();
        tape.grad_of(node, 0).accumulate([d](std::size_t k) { return d[k]; });
    };
    return x.tape().record("layer_norm", {x}, x.shape(), backward, [&](Node<T>& node) {
        const Matrix<T>& v = x.value();
        const std::size_t n = v.shape()[0], m = v.shape()[1];
        autodiff::ensure_shape(node.saved(), {1, m});
        for (std::size_t j = 0; j < m; ++j) {
            T mean = 0, var = 0;
            for (std::size_t i = 0; i < n; ++i) mean += v(i, j);
            mean /= T(n);
            for (std::size_t i = 0; i < n; ++i) var += (v(i, j) - mean) * (v(i, j) - mean);
            var /= T(n);
            const T inv_sigma = T(1) / std::sqrt(var + eps);
            node.saved()(0, j) = inv_sigma;
            for (std::size_t i = 0; i < n; ++i) node.value(i, j) = (v(i, j) - mean) * inv_sigma;
        }
    });
}

}  // namespace example
