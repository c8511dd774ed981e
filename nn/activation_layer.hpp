#pragma once
/// @file
/// The activations as modules, for Sequential and models built from parts:
/// ReLU, Sigmoid, Tanh (and Identity), each with no parameters.

#include <string>

#include "nn/activation.hpp"
#include "nn/module.hpp"

namespace nn {

template <class T = double>
class ActivationLayer : public Module<T> {
public:
    explicit ActivationLayer(Activation a) : activation_(a) {}
    autodiff::Var<T> forward(autodiff::Var<T> x) override { return activate(x, activation_); }
    Activation activation() const { return activation_; }
    std::string type() const override {
        switch (activation_) {
            case Activation::relu: return "ReLU";
            case Activation::sigmoid: return "Sigmoid";
            case Activation::tanh: return "Tanh";
            case Activation::identity: break;
        }
        return "Identity";
    }
    std::string describe() const override { return type() + "()"; }

private:
    Activation activation_;
};

template <class T = double>
struct ReLU : ActivationLayer<T> {
    ReLU() : ActivationLayer<T>(Activation::relu) {}
};
template <class T = double>
struct Sigmoid : ActivationLayer<T> {
    Sigmoid() : ActivationLayer<T>(Activation::sigmoid) {}
};
template <class T = double>
struct Tanh : ActivationLayer<T> {
    Tanh() : ActivationLayer<T>(Activation::tanh) {}
};

}  // namespace nn
