#include "nn/convolution.hpp"

#include "nn/layer_checks.hpp"

namespace nn {

std::string to_string(autodiff::ImageShape s) {
    return std::to_string(s.channels) + "x" + std::to_string(s.height) + "x" + std::to_string(s.width);
}

namespace {

NumpyRandom& as_lvalue(NumpyRandom&& rng) { return rng; }

// The row count and what the rows are, for require_rows' message.
std::string images(autodiff::ImageShape s) {
    return "rows: " + to_string(s) + " images as columns (channels x height x width)";
}

// C * kernel * kernel, once the kernel is known to fit the image: checked before the weights
// are drawn, which for an impossible kernel would be an allocation of hundreds of GB first.
std::size_t checked_fan_in(autodiff::ImageShape input, std::size_t out_channels, std::size_t kernel,
                           std::size_t padding, std::size_t stride) {
    autodiff::conv2d_output_shape(input, out_channels, autodiff::Window{kernel, kernel, stride, padding});
    return input.channels * kernel * kernel;  // below the image's C*H*W (padded), which is checked
}

}  // namespace

template <class T>
Conv2d<T>::Conv2d(autodiff::ImageShape input, std::size_t out_channels, std::size_t kernel, std::size_t padding,
                  NumpyRandom& rng, Init init, std::size_t stride)
    : Conv2d(input, out_channels, autodiff::Window{kernel, kernel, stride, padding},
             initialise_layer<T>(init, checked_fan_in(input, out_channels, kernel, padding, stride), out_channels, rng)) {}

template <class T>
Conv2d<T>::Conv2d(autodiff::ImageShape input, std::size_t out_channels, std::size_t kernel, std::size_t padding,
                  std::uint32_t seed, Init init, std::size_t stride)
    : Conv2d(input, out_channels, kernel, padding, as_lvalue(NumpyRandom(seed)), init, stride) {}

template <class T>
Conv2d<T>::Conv2d(autodiff::ImageShape input, std::size_t out_channels, autodiff::Window window, LayerInit<T> p)
    : W(this->add_parameter("W", std::move(p.W))),
      b(this->add_parameter("b", std::move(p.b))),
      input_(input),
      output_(autodiff::conv2d_output_shape(input, out_channels, window)),
      window_(window) {}

template <class T>
std::string Conv2d<T>::describe() const {
    std::string s = "Conv2d(" + to_string(input_) + ", " + std::to_string(output_.channels) + ", " +
                    std::to_string(window_.height);
    if (window_.padding) s += ", padding=" + std::to_string(window_.padding);
    if (window_.stride != 1) s += ", stride=" + std::to_string(window_.stride);
    return s + ")";
}

template <class T>
autodiff::Var<T> Conv2d<T>::forward(autodiff::Var<T> x) {
    require_rows(*this, x, input_.size(), images(input_).c_str());
    autodiff::Tape<T>& tape = x.tape();
    return autodiff::conv2d(x, input_, tape.parameter(W), tape.parameter(b), window_);
}

template <class T>
Pool2d<T>::Pool2d(Kind kind, autodiff::ImageShape input, std::size_t kernel)
    : kind_(kind),
      input_(input),
      output_(autodiff::pool2d_output_shape(input, autodiff::Window{kernel, kernel, kernel, 0})),
      kernel_(kernel) {}

template <class T>
std::string Pool2d<T>::describe() const {
    return type() + "(" + to_string(input_) + ", " + std::to_string(kernel_) + ")";
}

template <class T>
autodiff::Var<T> Pool2d<T>::forward(autodiff::Var<T> x) {
    require_rows(*this, x, input_.size(), images(input_).c_str());
    return kind_ == Kind::max ? autodiff::max_pool2d(x, input_, kernel_) : autodiff::avg_pool2d(x, input_, kernel_);
}

template class Conv2d<float>;
template class Conv2d<double>;
template class Pool2d<float>;
template class Pool2d<double>;

}  // namespace nn
