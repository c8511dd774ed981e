#pragma once
/// @file
/// Matrices whose size comes from a user (a layer size on a command line): allocated only
/// when their byte count fits in a size_t and in memory, else an error naming what and how big.

#include <cstddef>
#include <new>
#include <string>

#include "autodiff/error.hpp"
#include "autodiff/matrix.hpp"

namespace nn {

/// An uninitialised rows x cols matrix for `who` to fill. Throws autodiff::Error naming `who`,
/// the shape and the bytes when they wrap around size_t (xtensor then allocated a small buffer
/// that the caller filled as a huge one: a crash) or memory runs out (a bare std::bad_alloc
/// named nothing).
template <class T>
autodiff::Matrix<T> allocate_matrix(const std::string& who, std::size_t rows, std::size_t cols) {
    const std::string what = who + ": a " + std::to_string(rows) + "x" + std::to_string(cols) + " matrix";
    std::size_t count = 0, bytes = 0;
    if (!autodiff::multiply_fits(rows, cols, count) || !autodiff::multiply_fits(count, sizeof(T), bytes))
        throw autodiff::Error(what + " has more bytes than a size_t can count");
    try {
        return autodiff::Matrix<T>({rows, cols});
    } catch (const std::bad_alloc&) {
        throw autodiff::Error(what + " needs " + std::to_string(bytes) + " bytes, more than could be allocated");
    }
}

}  // namespace nn
