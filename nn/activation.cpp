#include "nn/activation.hpp"

#include "autodiff/error.hpp"

namespace nn {

std::string to_string(Activation a) {
    switch (a) {
        case Activation::relu: return "relu";
        case Activation::sigmoid: return "sigmoid";
        case Activation::tanh: return "tanh";
        case Activation::identity: return "identity";
    }
    return "?";
}

Activation activation_from_string(const std::string& name) {
    for (Activation a : {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity})
        if (to_string(a) == name) return a;
    throw autodiff::Error("unknown activation '" + name + "' (relu, sigmoid, tanh or identity)");
}

}  // namespace nn
