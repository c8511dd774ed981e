#include "nn/init.hpp"

#include <cmath>

#include "autodiff/error.hpp"
#include "nn/allocate.hpp"

namespace nn {

std::string to_string(Init init) {
    switch (init) {
        case Init::notebook: return "notebook";
        case Init::he: return "he";
        case Init::glorot: return "glorot";
    }
    return "?";
}

Init init_from_string(const std::string& name) {
    for (Init i : {Init::notebook, Init::he, Init::glorot})
        if (to_string(i) == name) return i;
    throw autodiff::Error("unknown initialiser '" + name + "' (notebook, he or glorot)");
}

namespace {

template <class T, class Draw>
autodiff::Matrix<T> draw(std::size_t rows, std::size_t cols, Draw&& one) {
    autodiff::Matrix<T> m = allocate_matrix<T>("initialise_layer", rows, cols);
    for (T& x : m) x = static_cast<T>(one());  // row-major, as NumPy fills
    return m;
}

}  // namespace

template <class T>
LayerInit<T> initialise_layer(Init init, std::size_t n_in, std::size_t n_out, NumpyRandom& rng) {
    if (n_in == 0 || n_out == 0)
        throw autodiff::Error("initialise_layer: layer sizes must be at least 1, got " + std::to_string(n_in) +
                              " -> " + std::to_string(n_out));
    switch (init) {
        case Init::notebook: {
            // randn(...) * 0.01 in double, then converted: float models start from the same numbers.
            auto W = draw<T>(n_out, n_in, [&] { return rng.standard_normal() * 0.01; });
            auto b = draw<T>(n_out, 1, [&] { return rng.standard_normal() * 0.01; });
            return {std::move(W), std::move(b)};
        }
        case Init::he: {
            const double sd = std::sqrt(2.0 / double(n_in));
            return {draw<T>(n_out, n_in, [&] { return rng.standard_normal() * sd; }), xt::zeros<T>({n_out, std::size_t(1)})};
        }
        case Init::glorot: {
            const double a = std::sqrt(6.0 / double(n_in + n_out));
            return {draw<T>(n_out, n_in, [&] { return (2 * rng.uniform() - 1) * a; }), xt::zeros<T>({n_out, std::size_t(1)})};
        }
    }
    throw autodiff::Error("initialise_layer: unknown initialiser");
}

template LayerInit<float> initialise_layer<float>(Init, std::size_t, std::size_t, NumpyRandom&);
template LayerInit<double> initialise_layer<double>(Init, std::size_t, std::size_t, NumpyRandom&);

}  // namespace nn
