#pragma once
/// @file
/// Weight initialisers. All draw from nn::NumpyRandom, so a seed fixes the whole model;
/// each layer draws W first, then b, as the notebook's init_parameters does.

#include <cstddef>
#include <string>

#include "autodiff/matrix.hpp"
#include "nn/numpy_random.hpp"

namespace nn {

enum class Init {
    notebook,  // W and b ~ N(0, 1) * 0.01, the notebook's init_parameters
    he,        // W ~ N(0, 2 / n_in), b = 0: for ReLU layers (He et al. 2015)
    glorot,    // W ~ U(-a, a), a = sqrt(6 / (n_in + n_out)), b = 0 (Glorot & Bengio 2010)
};

std::string to_string(Init init);
Init init_from_string(const std::string& name);  ///< throws autodiff::Error for an unknown name

template <class T>
struct LayerInit {
    autodiff::Matrix<T> W, b;
};

/// W is n_out x n_in, b is n_out x 1.
template <class T>
LayerInit<T> initialise_layer(Init init, std::size_t n_in, std::size_t n_out, NumpyRandom& rng);

}  // namespace nn
