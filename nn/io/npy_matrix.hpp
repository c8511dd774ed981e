#pragma once
/// @file
/// One 2-d float32 or float64 array as the bytes of an .npy file, the format numpy.load reads.
#include <cstddef>
#include <string>

#include <xtensor/xtensor.hpp>

namespace nn {

/// "<f4" for float, "<f8" for double (little-endian hosts only).
template <class T>
constexpr const char* npy_dtype_name() {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "float or double");
    return sizeof(T) == 4 ? "<f4" : "<f8";
}

/// The .npy bytes of `a`.
template <class T>
std::string npy_bytes(const xt::xtensor<T, 2>& a);

/// The rows x cols array in `bytes`, which must be exactly the .npy NumPy writes for it (header
/// checked before anything is allocated, element count checked against the data's real size).
/// Throws nn::DataError naming `file` otherwise, and for a NaN or Inf (naming row and column).
template <class T>
xt::xtensor<T, 2> parse_npy_matrix(const std::string& bytes, const std::string& file, std::size_t rows,
                                   std::size_t cols);

}  // namespace nn
