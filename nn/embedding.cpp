#include "nn/embedding.hpp"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "nn/numpy_random.hpp"

namespace nn {

namespace {

// The value as written by a person ("1e+30", "2.5", "inf"): to_string's "%f" shows 1e30 as
// 31 digits and six decimals.
template <class T>
std::string shortest(T value) {
    std::ostringstream out;
    out << std::setprecision(std::numeric_limits<T>::max_digits10) << value;
    return out.str();
}

template <class T>
autodiff::Matrix<T> standard_normal(std::size_t rows, std::size_t cols, std::uint32_t seed) {
    NumpyRandom rng(seed);
    return xt::cast<T>(rng.randn(rows, cols));
}

}  // namespace

template <class T>
Embedding<T>::Embedding(std::size_t vocabulary, std::size_t dim, std::uint32_t seed)
    : table(this->add_parameter("table", standard_normal<T>(dim, vocabulary, seed))) {
    if (vocabulary == 0 || dim == 0) throw autodiff::Error(describe() + ": the vocabulary and the dimension must be at least 1");
}

template <class T>
std::string Embedding<T>::describe() const {
    return "Embedding(" + std::to_string(vocabulary()) + ", " + std::to_string(dim()) + ")";
}

template <class T>
autodiff::Var<T> Embedding<T>::operator()(autodiff::Tape<T>& tape, const autodiff::Labels& ids) {
    for (std::size_t j = 0; j < ids.size(); ++j)
        if (ids[j] >= vocabulary())
            throw autodiff::Error(this->who() + ": id " + std::to_string(ids[j]) + " (example " + std::to_string(j) +
                                  ") is outside the vocabulary of " + std::to_string(vocabulary()));
    return autodiff::gather(tape.parameter(table), ids, 1);
}

// Checked before the cast: converting Inf, NaN or a value past size_t's range to size_t is
// undefined (on x86 such ids came out as token 0). The last id is a T exactly (forward checks).
template <class T>
std::size_t Embedding<T>::token_id(T id, std::size_t example) const {
    if (!(id >= T(0) && id <= T(vocabulary() - 1) && id == std::floor(id)))
        throw autodiff::Error(this->who() + ": example " + std::to_string(example) + " holds " + shortest(id) +
                              ", not a token id (a whole number from 0 to " + std::to_string(vocabulary() - 1) +
                              ")");
    return static_cast<std::size_t>(id);
}

template <class T>
autodiff::Var<T> Embedding<T>::forward(autodiff::Var<T> x) {
    if (x.rows() != 1)
        throw autodiff::Error(this->who() + ": its input is " + autodiff::to_string(x.shape()) +
                              " but it takes 1 x m token ids (one per example)");
    // Every whole number up to 2^digits is a T; past it, neighbouring ids share one value (a
    // float stores 2^24 + 1 as 2^24): such a vocabulary looked up wrong tokens without a word,
    // and refused the valid id 2^24 (found by an attack).
    constexpr std::size_t exact = std::size_t(1) << std::numeric_limits<T>::digits;
    if (vocabulary() - 1 > exact)
        throw autodiff::Error(this->who() + ": a vocabulary of " + std::to_string(vocabulary()) + " ids is more than a " +
                              (sizeof(T) == 4 ? "float" : "double") + " holds exactly (ids up to " +
                              std::to_string(exact) + "); give the ids as Labels: operator()(tape, ids)");
    const autodiff::Matrix<T>& v = x.value();
    ids_.resize(v.size());
    for (std::size_t j = 0; j < v.size(); ++j) ids_[j] = token_id(v(0, j), j);
    return (*this)(x.tape(), ids_);
}

template class Embedding<float>;
template class Embedding<double>;

}  // namespace nn
