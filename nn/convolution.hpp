#pragma once
/// @file
/// Conv2d, MaxPool2d and AvgPool2d over images stored one per column ((C*H*W) x m, C x H x W
/// order, autodiff::ImageShape). Each layer is built for one input image shape and knows the
/// shape it makes (output_shape()), so the next layer is built from it:
///     nn::Conv2d<float> conv1{{1, 28, 28}, 32, 3, /*padding=*/1};
///     nn::MaxPool2d<float> pool1{conv1.output_shape(), 2};
/// An input of any other height says which layer, what it got and what it takes.

#include <cstdint>
#include <string>

#include "autodiff/ops.hpp"
#include "nn/init.hpp"
#include "nn/module.hpp"

namespace nn {

std::string to_string(autodiff::ImageShape s);  ///< "1x28x28"

/// torch.nn.Conv2d(C_in, C_out, kernel, stride, padding): W is C_out x (C_in*k*k), each row
/// one filter in (channel, row, column) order (PyTorch's weight.reshape(C_out, -1)); b is C_out x 1.
template <class T = double>
class Conv2d : public Module<T> {
public:
    Conv2d(autodiff::ImageShape input, std::size_t out_channels, std::size_t kernel, std::size_t padding,
           NumpyRandom& rng, Init init = Init::he, std::size_t stride = 1);
    Conv2d(autodiff::ImageShape input, std::size_t out_channels, std::size_t kernel, std::size_t padding = 0,
           std::uint32_t seed = 0, Init init = Init::he, std::size_t stride = 1);
    autodiff::Var<T> forward(autodiff::Var<T> x) override;

    autodiff::ImageShape input_shape() const { return input_; }
    autodiff::ImageShape output_shape() const { return output_; }
    std::string type() const override { return "Conv2d"; }
    std::string describe() const override;

    autodiff::Parameter<T>& W;
    autodiff::Parameter<T>& b;

private:
    Conv2d(autodiff::ImageShape input, std::size_t out_channels, autodiff::Window window, LayerInit<T> initial);
    autodiff::ImageShape input_, output_;
    autodiff::Window window_;
};

/// Max or average pooling with a kernel x kernel window and stride = kernel (PyTorch's default).
template <class T = double>
class Pool2d : public Module<T> {
public:
    enum class Kind { max, average };
    Pool2d(Kind kind, autodiff::ImageShape input, std::size_t kernel);
    autodiff::Var<T> forward(autodiff::Var<T> x) override;

    autodiff::ImageShape input_shape() const { return input_; }
    autodiff::ImageShape output_shape() const { return output_; }
    std::string type() const override { return kind_ == Kind::max ? "MaxPool2d" : "AvgPool2d"; }
    std::string describe() const override;

private:
    Kind kind_;
    autodiff::ImageShape input_, output_;
    std::size_t kernel_;
};

template <class T = double>
struct MaxPool2d : Pool2d<T> {
    MaxPool2d(autodiff::ImageShape input, std::size_t kernel) : Pool2d<T>(Pool2d<T>::Kind::max, input, kernel) {}
};
template <class T = double>
struct AvgPool2d : Pool2d<T> {
    AvgPool2d(autodiff::ImageShape input, std::size_t kernel) : Pool2d<T>(Pool2d<T>::Kind::average, input, kernel) {}
};

}  // namespace nn
