#pragma once
// The few loops and BLAS calls the ops are written in. Plain loops over contiguous
// row-major storage: at the notebook's sizes, per-call overhead is what costs, so the
// kernels write into preallocated outputs and never build lazy expressions.

#include <cstddef>

#include "autodiff/matrix.hpp"

#include "autodiff/no_overlap.hpp"

namespace autodiff::kernels {

enum class Transpose { no, yes };

// C = alpha * op(A) * op(B) + beta * C, through CBLAS (row-major). C must be sized.
template <class T>
void gemm(const Matrix<T>& A, Transpose ta, const Matrix<T>& B, Transpose tb, Matrix<T>& C,
          T alpha = T(1), T beta = T(0));

// The same on raw row-major storage with leading dimensions, for ops that see a matrix as
// another shape (conv2d sees its (C_out*H'*W') x m output as C_out x (H'*W'*m)). Every
// size must fit in an int (CBLAS's type); the caller checks.
template <class T>
void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* A, std::size_t lda,
          const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

// A read-only view of a matrix broadcast to a larger shape: a dimension of size 1 is
// read with stride 0, so the same element serves the whole row or column.
template <class T>
struct Broadcast {
    const T* data;
    std::size_t row_stride;
    std::size_t col_stride;
    Broadcast(const Matrix<T>& m)
        : data(m.data()), row_stride(m.shape()[0] == 1 ? 0 : m.shape()[1]), col_stride(m.shape()[1] == 1 ? 0 : 1) {}
    T operator()(std::size_t i, std::size_t j) const { return data[i * row_stride + j * col_stride]; }
};

// f(i, j) for rows i in [first_row, rows) and every column j, by rows. A single column (one
// example: a recurrent model's output at one step, 14 x 1) is one loop over its rows, not a
// loop of one element per row, whose set-up cost more than the element: the softmax of a
// 14 x 1 column took ~1,650 instructions. Same elements in the same order either way.
template <class F>
inline void each_by_rows(std::size_t first_row, std::size_t rows, std::size_t cols, F&& f) {
    if (cols == 1) {
        for (std::size_t i = first_row; i < rows; ++i) f(i, 0);
        return;
    }
    for (std::size_t i = first_row; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) f(i, j);
}

// out(i, j) = f(i, j) over out's shape.
template <class T, class F>
void fill(Matrix<T>& out, F&& f) {
    const std::size_t cols = out.shape()[1];
    T* o = out.data();
    each_by_rows(0, out.shape()[0], cols, [&](std::size_t i, std::size_t j) { o[i * cols + j] = f(i, j); });
}

// out(i, j) = column[i] for every j: a bias broadcast over the examples. The value is read
// once per row, into a local the row's stores cannot change: through fill()'s f(i, j) it
// was read again for every element and the row was not vectorised (the S step spent ~900
// instructions filling its three 10 x 10 outputs).
template <class T>
inline void broadcast_column(const T* column, Matrix<T>& out) {
    const std::size_t rows = out.shape()[0], cols = out.shape()[1];
    T* o = out.data();
    if (cols == 1) {
        for (std::size_t i = 0; i < rows; ++i) o[i] = column[i];
        return;
    }
    for (std::size_t i = 0; i < rows; ++i) {
        const T value = column[i];
        T* __restrict row = o + i * cols;
        for (std::size_t j = 0; j < cols; ++j) row[j] = value;
    }
}

// Adds g, summed over the dimensions in which `target` was broadcast, into target
// (or writes it when overwrite): the backward of every broadcast.
template <class T>
void sum_to(const Matrix<T>& g, Matrix<T>& target, bool overwrite, T factor = T(1));

// The sum of value(0), ..., value(n - 1) in eight lanes, vectorised (so its rounding differs
// from a left-to-right sum): `value` may also store what it returns, so that a pass that
// writes a row can sum it without reading it again (relu's mask with the bias gradient did,
// until a flat mask pass and then row_sum cost half as much at an MLP's 10 x 10).
// Inline: a bias gradient sums every row of a small matrix (an MLP's 10 x 10), and a call
// per row (with its vector-state switch) cost more than the sum (7% of the S step).
template <class T, class Value>
inline T lane_sum(std::size_t n, Value&& value) {
    // Eight independent partial sums: the compiler may not reorder a floating-point sum
    // by itself, but it vectorises eight separate ones.
    T part[8] = {};
    std::size_t j = 0;
    // value(k) never reads what value(j < k) wrote (a store goes to a buffer none of its
    // reads come from): said to the compiler, so that it does not check for overlap at run
    // time before each row (S step: 1,344 -> 1,246 instructions per linear backward).
    TAPEGRAD_LOOP_WITHOUT_OVERLAP
    for (; j + 8 <= n; j += 8)
        for (std::size_t l = 0; l < 8; ++l) part[l] += value(j + l);
    T total = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; j < n; ++j) total += value(j);
    return total;
}

// The sum of x[0..n), in lane_sum's order.
template <class T>
inline T row_sum(const T* x, std::size_t n) {
    return lane_sum<T>(n, [x](std::size_t k) { return x[k]; });
}

// Column-wise (axis 0) reductions of a k x m matrix into a 1 x m row.
template <class T>
void column_max(const Matrix<T>& x, Matrix<T>& out);
template <class T>
void column_sum(const Matrix<T>& x, Matrix<T>& out);

// x[k] = exp(x[k]) for x[k] <= 0, in a loop the compiler vectorises (std::exp is a call
// per element). Within 1 ulp of std::exp; below -1022 ln 2 = -708.3964 (double) or
// -126 ln 2 = -87.3365 (float), where the result would be subnormal, it gives 0.
template <class T>
void exp_nonpositive(T* x, std::size_t n);

// x[k] = log(x[k]), in a loop the compiler vectorises. Within 1 ulp of std::log for positive
// normal numbers (a float in double, then rounded); std::log's result for anything else (0,
// a negative, a subnormal, an infinity, a NaN). Each element's result depends on it alone.
template <class T>
void log_each(T* x, std::size_t n);

// Stable softmax over each column; also leaves each column's max and log(sum(exp(z - max)))
// in max and log_sum (1 x m each), which log_softmax and the cross-entropy need. They are
// kept apart, not added: log softmax = (z - max) - log_sum keeps its digits where max +
// log_sum would round them away (float logits of 1e8: ulp 8, log 2 = 0.69).
template <class T>
void softmax_columns(const Matrix<T>& z, Matrix<T>& probabilities, Matrix<T>& max, Matrix<T>& log_sum);

}  // namespace autodiff::kernels
