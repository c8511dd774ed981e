#include "nn/dropout.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace nn {

namespace {
constexpr std::uint64_t limb = std::uint64_t(1) << 21;
}

template <class T>
Dropout<T>::Dropout(double p, std::uint64_t seed)
    : p_(p), seed_(seed), counter_(this->add_buffer("counter", xt::zeros<T>({std::size_t(3), std::size_t(1)}))) {
    if (!(p >= 0 && p < 1)) throw autodiff::Error(describe() + ": p must be in [0, 1)");
    // The layer drops with T(p): a p that a float holds as 1 (0.99999999; a double holds every
    // p below 1) was refused only by the first training step, as "dropout: p is 1.000000"
    // (found by an attack).
    if (!(static_cast<T>(p) < T(1))) {
        std::ostringstream out;
        out << std::setprecision(8) << "Dropout: p " << p << " is 1 as a float (the largest float below 1 is "
            << std::nextafter(1.0f, 0.0f) << ")";
        throw autodiff::Error(out.str());
    }
}

template <class T>
std::uint64_t Dropout<T>::counter() const {
    std::uint64_t c = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        const T piece = counter_(i, 0);
        if (!(piece >= T(0) && piece < T(limb) && piece == std::floor(piece)))
            throw autodiff::Error(this->who() + ": its counter buffer holds " + std::to_string(double(piece)) +
                                  ", not a whole number in [0, 2^21)");
        c = c * limb + std::uint64_t(piece);
    }
    return c;
}

template <class T>
void Dropout<T>::set_counter(std::uint64_t c) {
    for (std::size_t i = 3; i-- > 0; c /= limb) counter_(i, 0) = T(c % limb);
}

template <class T>
std::string Dropout<T>::describe() const {
    std::ostringstream out;
    out << "Dropout(" << p_ << ", seed=" << seed_ << ")";
    return out.str();
}

template <class T>
autodiff::Var<T> Dropout<T>::forward(autodiff::Var<T> x) {
    if (!this->is_training() || p_ == 0) return x;
    autodiff::CounterRng rng(seed_, counter());
    autodiff::Var<T> y = autodiff::dropout(x, T(p_), rng);
    set_counter(rng.counter);
    return y;
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace nn
