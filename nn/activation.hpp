#pragma once
/// @file
/// The hidden-layer activations an MLP can use, by name (for checkpoints and the command line).

#include <string>

#include "autodiff/ops.hpp"

namespace nn {

/// The engine's enum (relu, sigmoid, tanh, identity), which its fused linear takes.
using Activation = autodiff::Activation;

std::string to_string(Activation a);
Activation activation_from_string(const std::string& name);  ///< throws std::invalid_argument

template <class T>
autodiff::Var<T> activate(autodiff::Var<T> Z, Activation a) {
    switch (a) {
        case Activation::relu: return autodiff::relu(Z);
        case Activation::sigmoid: return autodiff::sigmoid(Z);
        case Activation::tanh: return autodiff::tanh(Z);
        case Activation::identity: break;
    }
    return Z;
}

}  // namespace nn
