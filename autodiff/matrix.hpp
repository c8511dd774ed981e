#pragma once
// The engine's array type and the shape vocabulary every op and error message shares.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace autodiff {

// Rank is fixed at 2: activations are features x examples, weights are n_out x n_in.
template <class T>
using Matrix = xt::xtensor<T, 2>;

// Class-index targets: one class per example (column).
using Labels = std::vector<std::size_t>;

struct Shape {
    std::size_t rows = 0;
    std::size_t cols = 0;
    std::size_t size() const { return rows * cols; }
    friend bool operator==(Shape a, Shape b) { return a.rows == b.rows && a.cols == b.cols; }
    friend bool operator!=(Shape a, Shape b) { return !(a == b); }
};

// a * b into `product`, or false when it does not fit in a size_t: a shape or an image whose
// element count wraps around would make an op allocate a small buffer and index a huge one.
inline bool multiply_fits(std::size_t a, std::size_t b, std::size_t& product) {
    return !__builtin_mul_overflow(a, b, &product);
}

template <class T>
Shape shape_of(const Matrix<T>& m) {
    return {m.shape()[0], m.shape()[1]};
}

inline std::string to_string(Shape s) {
    return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

// Whether every value of m is finite. Read as bits (a NaN or an Inf has every exponent bit
// set), with no early exit: the loop vectorises, where one that stops at the first
// std::isfinite failure does not. Training checks every parameter after every step with it.
template <class T>
bool all_finite(const Matrix<T>& m) {
    static_assert(std::numeric_limits<T>::is_iec559 && (sizeof(T) == 4 || sizeof(T) == 8), "IEEE float or double");
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
    const T* p = m.data();
    Bits non_finite = 0;
    for (std::size_t k = 0, n = m.size(); k < n; ++k) {
        Bits b;
        std::memcpy(&b, p + k, sizeof b);
        non_finite |= Bits((b & exponent) == exponent);
    }
    return non_finite == 0;
}

// Where the first NaN or Inf of m is, in the words of every error that reports one:
// "inf at row 0, column 1". Empty when every value is finite.
template <class T>
std::string first_non_finite(const Matrix<T>& m) {
    if (all_finite(m)) return {};
    const std::size_t cols = m.shape()[1];
    const T* p = m.data();
    for (std::size_t k = 0; k < m.size(); ++k)
        if (!std::isfinite(p[k]))
            return std::string(std::isnan(p[k]) ? "nan" : p[k] > 0 ? "inf" : "-inf") + " at row " +
                   std::to_string(k / cols) + ", column " + std::to_string(k % cols);
    return {};
}

// Resizes only when the shape changes, so a buffer reused with the same shape never reallocates.
// xtensor's resize() sets the new shape before it allocates: if the allocation throws, the
// matrix would claim a shape its storage does not have, and the next ensure_shape() to that
// shape would skip the resize and let the op write past the buffer. So a failed resize
// leaves the matrix empty (0x0), which the next call resizes for real.
template <class T>
[[gnu::noinline]] void resize_or_empty(Matrix<T>& m, Shape s) {
    try {
        m.resize({s.rows, s.cols});
    } catch (...) {
        m = Matrix<T>();  // no allocation: an empty xtensor holds no storage
        throw;
    }
}

// The check stays inline and the resize out of line: every tape entry calls this, and
// nearly always with the shape the buffer already has.
template <class T>
inline void ensure_shape(Matrix<T>& m, Shape s) {
    if (m.shape()[0] != s.rows || m.shape()[1] != s.cols) resize_or_empty(m, s);
}

}  // namespace autodiff
