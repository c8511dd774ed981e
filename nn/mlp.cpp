#include "nn/mlp.hpp"

#include <stdexcept>

namespace nn {

namespace {

std::string dashed(const std::vector<std::size_t>& sizes) {
    std::string s;
    for (std::size_t n : sizes) s += (s.empty() ? "" : "-") + std::to_string(n);
    return s;
}

}  // namespace

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom& rng)
    : sizes_(sizes), hidden_(hidden) {
    if (sizes.size() < 2) throw std::invalid_argument("MLP: needs at least an input and an output size, got " + dashed(sizes));
    for (std::size_t n : sizes)
        if (n == 0) throw std::invalid_argument("MLP: layer size 0 in " + dashed(sizes));
    for (std::size_t l = 1; l < sizes.size(); ++l) {
        this->register_module("layer" + std::to_string(l), layers.emplace_back(sizes[l - 1], sizes[l], rng, init));
        if (l + 1 < sizes.size())
            this->register_module("act" + std::to_string(l), activations.emplace_back(hidden));
    }
}

template <class T>
std::string MLP<T>::describe() const {
    return "MLP(" + dashed(sizes_) + ", " + to_string(hidden_) + ")";
}

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, std::uint32_t seed)
    : MLP(sizes, hidden, init, NumpyRandom(seed)) {}

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom&& rng)
    : MLP(sizes, hidden, init, rng) {}

template <class T>
autodiff::Var<T> MLP<T>::forward(autodiff::Var<T> X) {
    autodiff::Var<T> A = X;
    // A hidden layer's activation runs in its Linear's epilogue (one fused tape entry);
    // the ActivationLayer says which.
    for (std::size_t l = 0; l < layers.size(); ++l)
        A = l < activations.size() ? layers[l].forward(A, activations[l].activation()) : layers[l](A);
    return A;
}

template class MLP<float>;
template class MLP<double>;

}  // namespace nn
