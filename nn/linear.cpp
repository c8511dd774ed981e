#include "nn/linear.hpp"

#include "autodiff/error.hpp"

namespace nn {

template <class T>
Linear<T>::Linear(std::size_t n_in, std::size_t n_out, Init init, NumpyRandom& rng, std::string name)
    : Linear(initialise_layer<T>(init, n_in, n_out, rng), std::move(name)) {}

template <class T>
Linear<T>::Linear(LayerInit<T> p, std::string name) : Linear(std::move(p.W), std::move(p.b), std::move(name)) {}

template <class T>
Linear<T>::Linear(autodiff::Matrix<T> W_, autodiff::Matrix<T> b_, std::string name)
    : W(std::move(W_), name + ".W"), b(std::move(b_), name + ".b"), name_(std::move(name)) {
    if (b.shape() != autodiff::Shape{n_out(), 1})
        throw autodiff::Error(name_ + ": b is " + autodiff::to_string(b.shape()) + " but W is " +
                              autodiff::to_string(W.shape()) + ": b must be " + std::to_string(n_out()) + "x1");
}

template <class T>
autodiff::Var<T> Linear<T>::operator()(autodiff::Var<T> A) {
    if (A.rows() != n_in())
        throw autodiff::Error(name_ + " (" + std::to_string(n_in()) + " -> " + std::to_string(n_out()) +
                              "): its input is " + autodiff::to_string(A.shape()) + " but it takes " +
                              std::to_string(n_in()) + " features (rows; activations are features x examples)");
    autodiff::Tape<T>& tape = A.tape();
    return autodiff::linear(tape.parameter(W), A, tape.parameter(b));
}

template class Linear<float>;
template class Linear<double>;

}  // namespace nn
