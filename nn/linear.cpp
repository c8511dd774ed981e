#include "nn/linear.hpp"

#include "nn/layer_checks.hpp"

namespace nn {

namespace {
NumpyRandom& as_lvalue(NumpyRandom&& rng) { return rng; }
}  // namespace

template <class T>
Linear<T>::Linear(std::size_t n_in, std::size_t n_out, NumpyRandom& rng, Init init)
    : Linear(initialise_layer<T>(init, n_in, n_out, rng), "") {}

template <class T>
Linear<T>::Linear(std::size_t n_in, std::size_t n_out, std::uint32_t seed, Init init)
    : Linear(n_in, n_out, init, as_lvalue(NumpyRandom(seed)), "") {}

template <class T>
Linear<T>::Linear(std::size_t n_in, std::size_t n_out, Init init, NumpyRandom& rng, std::string name)
    : Linear(initialise_layer<T>(init, n_in, n_out, rng), std::move(name)) {}

template <class T>
Linear<T>::Linear(LayerInit<T> p, std::string name) : Linear(std::move(p.W), std::move(p.b), std::move(name)) {}

template <class T>
Linear<T>::Linear(autodiff::Matrix<T> W_, autodiff::Matrix<T> b_, std::string name)
    : W(this->add_parameter("W", std::move(W_))), b(this->add_parameter("b", std::move(b_))) {
    if (!name.empty()) this->set_default_name(name);
    if (b.shape() != autodiff::Shape{n_out(), 1})
        throw autodiff::Error(this->who() + ": b is " + autodiff::to_string(b.shape()) + " but W is " +
                              autodiff::to_string(W.shape()) + ": b must be " + std::to_string(n_out()) + "x1");
}

template <class T>
std::string Linear<T>::describe() const {
    return "Linear(" + std::to_string(n_in()) + ", " + std::to_string(n_out()) + ")";
}

template <class T>
autodiff::Var<T> Linear<T>::forward(autodiff::Var<T> A) {
    require_rows(*this, A, n_in());
    autodiff::Tape<T>& tape = A.tape();
    return autodiff::linear(tape.parameter(W), A, tape.parameter(b));
}

template <class T>
autodiff::Var<T> Linear<T>::forward(autodiff::Var<T> A, Activation activation) {
    require_rows(*this, A, n_in());
    autodiff::Tape<T>& tape = A.tape();
    return autodiff::linear(tape.parameter(W), A, tape.parameter(b), activation);
}

template class Linear<float>;
template class Linear<double>;

}  // namespace nn
