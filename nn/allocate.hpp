#pragma once
/// @file
/// Matrices and vectors whose size comes from a user (a layer size on a command line): allocated
/// only when their byte count fits in a size_t and in memory, else an error naming what and how big.

#include <cstddef>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "autodiff/error.hpp"
#include "autodiff/matrix.hpp"

namespace nn {

namespace detail {

// make(), which allocates the product of `sizes` bytes (the element's size among them);
// autodiff::Error naming `what` when that product wraps around size_t or memory runs out (a
// bare std::bad_alloc, or std::vector's std::length_error past its max_size(), named nothing).
template <class Make>
auto allocate_counted(const std::string& what, std::initializer_list<std::size_t> sizes, Make&& make) {
    std::size_t bytes = 1;
    for (const std::size_t size : sizes)
        if (!autodiff::multiply_fits(bytes, size, bytes))
            throw autodiff::Error(what + " has more bytes than a size_t can count");
    try {
        return make();
    } catch (const std::bad_alloc&) {
    } catch (const std::length_error&) {
    }
    throw autodiff::Error(what + " needs " + std::to_string(bytes) + " bytes, more than could be allocated");
}

}  // namespace detail

/// Throws autodiff::Error naming `what` unless `count` pieces of at least `bytes_each` bytes fit
/// in a size_t and in this machine's memory, swap included. For what is made in many small
/// allocations from a user's count (an LSTM's layers): each succeeds until the system runs
/// out, and Linux then kills the process (it overcommits) instead of throwing bad_alloc.
void require_fits_in_memory(const std::string& what, std::size_t count, std::size_t bytes_each);

/// Bytes the process's allocator has handed out and not taken back (glibc's mallinfo2), or 0
/// where it cannot say: what making an object really took is the difference of two calls.
std::size_t allocated_bytes();

/// An uninitialised rows x cols matrix for `who` to fill. Throws autodiff::Error naming `who`,
/// the shape and the bytes when they wrap around size_t (xtensor then allocated a small buffer
/// that the caller filled as a huge one: a crash) or memory runs out.
template <class T>
autodiff::Matrix<T> allocate_matrix(const std::string& who, std::size_t rows, std::size_t cols) {
    return detail::allocate_counted(who + ": a " + std::to_string(rows) + "x" + std::to_string(cols) + " matrix",
                                    {rows, cols, sizeof(T)}, [&] { return autodiff::Matrix<T>({rows, cols}); });
}

/// n value-initialised numbers for `who`, refused as allocate_matrix refuses a matrix.
template <class T>
std::vector<T> allocate_vector(const std::string& who, std::size_t n) {
    return detail::allocate_counted(who + ": an array of " + std::to_string(n) + " numbers", {n, sizeof(T)},
                                    [&] { return std::vector<T>(n); });
}

}  // namespace nn
