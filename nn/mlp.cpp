#include "nn/mlp.hpp"

#include "autodiff/error.hpp"

namespace nn {

namespace {

std::string describe(const std::vector<std::size_t>& sizes) {
    std::string s;
    for (std::size_t n : sizes) s += (s.empty() ? "" : "-") + std::to_string(n);
    return s;
}

}  // namespace

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom& rng)
    : sizes_(sizes), hidden_(hidden) {
    if (sizes.size() < 2) throw autodiff::Error("MLP: needs at least an input and an output size, got " + describe(sizes));
    for (std::size_t n : sizes)
        if (n == 0) throw autodiff::Error("MLP: layer size 0 in " + describe(sizes));
    layers.reserve(sizes.size() - 1);
    for (std::size_t l = 1; l < sizes.size(); ++l)
        layers.emplace_back(sizes[l - 1], sizes[l], init, rng, "layer " + std::to_string(l));
}

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, std::uint32_t seed)
    : MLP(sizes, hidden, init, NumpyRandom(seed)) {}

template <class T>
MLP<T>::MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom&& rng)
    : MLP(sizes, hidden, init, rng) {}

template <class T>
autodiff::Var<T> MLP<T>::operator()(autodiff::Var<T> X) {
    autodiff::Var<T> A = X;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        autodiff::Var<T> Z = layers[l](A);
        A = (l + 1 < layers.size()) ? activate(Z, hidden_) : Z;
    }
    return A;
}

template <class T>
std::vector<autodiff::Parameter<T>*> MLP<T>::parameters() {
    std::vector<autodiff::Parameter<T>*> ps;
    for (Linear<T>& layer : layers) {
        ps.push_back(&layer.W);
        ps.push_back(&layer.b);
    }
    return ps;
}

template <class T>
void MLP<T>::zero_grad() {
    for (Linear<T>& layer : layers) {
        layer.W.zero_grad();
        layer.b.zero_grad();
    }
}

template class MLP<float>;
template class MLP<double>;

}  // namespace nn
