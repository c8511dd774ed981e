#pragma once
/// @file
/// The one way a layer reports an input that does not fit it: which layer, the shape it got,
/// the shape it takes, and the convention.

#include <string>

#include "autodiff/error.hpp"
#include "nn/module.hpp"

namespace nn {

/// Throws unless x has `rows` rows; `what` says what those rows are ("features",
/// "rows: 1x28x28 images as columns (channels x height x width)").
template <class T>
void require_rows(const Module<T>& layer, const autodiff::Var<T>& x, std::size_t rows,
                  const char* what = "features") {
    if (x.rows() != rows)
        throw autodiff::Error(layer.who() + ": its input is " + autodiff::to_string(x.shape()) + " but it takes " +
                              std::to_string(rows) + " " + what + " (rows; activations are features x examples)");
}

}  // namespace nn
