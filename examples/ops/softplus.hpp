#pragma once
// softplus(x) = log(1 + exp(x)), elementwise: a user-defined op written outside tapegrad's
// sources with autodiff::apply (autodiff/custom_op.hpp). Its derivative is sigmoid(x).
// Shared by examples/custom_op.cpp and tests/autodiff/custom_op_test.cpp.

#include <algorithm>
#include <cmath>

#include "autodiff/custom_op.hpp"

namespace example {

struct Softplus {
    static constexpr const char* name = "softplus";

    // Stable form: max(x, 0) + log1p(exp(-|x|)) never takes exp of a large positive number.
    template <class T>
    static autodiff::Matrix<T> forward(autodiff::OpContext<T>&, const autodiff::Matrix<T>& x) {
        autodiff::Matrix<T> y(x.shape());
        for (std::size_t k = 0; k < x.size(); ++k) {
            const T v = x.data()[k];
            y.data()[k] = std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v)));
        }
        return y;
    }

    // dx = dy * sigmoid(x), and sigmoid(x) = 1 - exp(-softplus(x)), from the saved output.
    template <class T>
    static autodiff::Matrix<T> backward(const autodiff::GradContext<T>& ctx, int /*input*/) {
        const autodiff::Matrix<T>& y = ctx.output();
        const autodiff::Matrix<T>& dy = ctx.grad_output();
        autodiff::Matrix<T> dx(y.shape());
        for (std::size_t k = 0; k < y.size(); ++k) dx.data()[k] = dy.data()[k] * -std::expm1(-y.data()[k]);
        return dx;
    }
};

template <class T>
autodiff::Var<T> softplus(autodiff::Var<T> x) {
    return autodiff::apply<Softplus>(x);
}

}  // namespace example
