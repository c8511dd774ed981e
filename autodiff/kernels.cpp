#include "autodiff/kernels.hpp"
#include "autodiff/exp_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <cblas.h>

namespace autodiff::kernels {

namespace {

CBLAS_TRANSPOSE cblas(Transpose t) { return t == Transpose::yes ? CblasTrans : CblasNoTrans; }

void gemm_call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc) {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a, int lda,
               const double* b, int ldb, double beta, double* c, int ldc) {
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <class T>
void exp_nonpositive(T* x, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) x[k] = exp_nonpositive_one(x[k]);
}

// Element by element, each by log_one (branch-free, so the loop vectorises): a softmax's
// column keeps its log when another example's logits hold a NaN, and the log op gives the same
// bits for the same number.
template <class T>
void log_each(T* x, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) x[k] = log_one(x[k]);
}

template <class T>
void gemm(Transpose ta, Transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* A, std::size_t lda,
          const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
    gemm_call(cblas(ta), cblas(tb), static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

template <class T>
void gemm(const Matrix<T>& A, Transpose ta, const Matrix<T>& B, Transpose tb, Matrix<T>& C, T alpha, T beta) {
    const std::size_t k = ta == Transpose::yes ? A.shape()[0] : A.shape()[1];
    gemm(ta, tb, C.shape()[0], C.shape()[1], k, alpha, A.data(), A.shape()[1], B.data(), B.shape()[1], beta, C.data(),
         C.shape()[1]);
}

template <class T>
void sum_to(const Matrix<T>& g, Matrix<T>& target, bool overwrite, T factor) {
    const std::size_t rows = g.shape()[0], cols = g.shape()[1];
    const std::size_t t_rows = target.shape()[0], t_cols = target.shape()[1];
    const T* in = g.data();
    T* out = target.data();
    if (t_cols == 1 && t_rows == rows) {  // a row's sum to its own element (a bias gradient)
        // Written where overwritten, not zero-filled first (a call to memset, ~30 instructions
        // of a 10 x 10 sum's ~600): 0 + the sum, as the fill and += gave.
        for (std::size_t i = 0; i < rows; ++i) out[i] = (overwrite ? T(0) : out[i]) + factor * row_sum(in + i * cols, cols);
        return;
    }
    if (overwrite) std::fill(target.begin(), target.end(), T(0));
    // target is rows x cols, rows x 1, 1 x cols or 1 x 1; a broadcast dimension reads index 0.
    for (std::size_t i = 0; i < rows; ++i) {
        T* out_row = out + (t_rows == 1 ? 0 : i * t_cols);
        const T* g_row = in + i * cols;
        if (t_cols == 1) {
            out_row[0] += factor * row_sum(g_row, cols);
        } else {
            for (std::size_t j = 0; j < cols; ++j) out_row[j] += factor * g_row[j];
        }
    }
}

namespace {

// out[j] = combine(out[j], x(i, j)) for rows i in [first_row, rows), by rows. The pointers
// are __restrict, so each row's loop vectorises without a run-time overlap check (at an
// MLP's 4 x 10 logits, the check and the unvectorised loops it guards were most of the
// softmax's column reductions).
template <class T, class Combine>
inline void fold_rows(const T* __restrict x, std::size_t first_row, std::size_t rows, std::size_t cols,
                      T* __restrict out, Combine combine) {
    if (cols == 1) {  // one loop over the column, as in each_by_rows
        for (std::size_t i = first_row; i < rows; ++i) out[0] = combine(out[0], x[i]);
        return;
    }
    for (std::size_t i = first_row; i < rows; ++i) {
        const T* __restrict row = x + i * cols;
        for (std::size_t j = 0; j < cols; ++j) out[j] = combine(out[j], row[j]);
    }
}

// out(i, j) = f(x(i, j), column[j]) over x's shape, by rows; out may be x itself.
template <class T, class F>
inline void with_column(const T* x, const T* __restrict column, std::size_t rows, std::size_t cols, T* out, F f) {
    if (cols == 1) {  // one loop over the column, as in each_by_rows
        for (std::size_t i = 0; i < rows; ++i) out[i] = f(x[i], column[0]);
        return;
    }
    for (std::size_t i = 0; i < rows; ++i) {
        const T* row = x + i * cols;
        T* out_row = out + i * cols;
        TAPEGRAD_LOOP_WITHOUT_OVERLAP
        for (std::size_t j = 0; j < cols; ++j) out_row[j] = f(row[j], column[j]);
    }
}

}  // namespace

template <class T>
void column_max(const Matrix<T>& x, Matrix<T>& out) {
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    ensure_shape(out, {1, cols});
    auto max = [](T a, T b) { return std::max(a, b); };
    if (rows < 2) {
        std::copy(x.data(), x.data() + rows * cols, out.data());
        return;
    }
    // The first two rows at once: a copy of the first would be a call to memmove.
    const T* __restrict first = x.data();
    T* __restrict o = out.data();
    for (std::size_t j = 0; j < cols; ++j) o[j] = max(first[j], first[cols + j]);
    fold_rows(x.data(), 2, rows, cols, o, max);
}

template <class T>
void column_sum(const Matrix<T>& x, Matrix<T>& out) {
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    ensure_shape(out, {1, cols});
    // 0 + the first row, not a zero fill (a call to memset) and then the first row added: the
    // same sums (0 + -0 is +0 either way).
    const T* __restrict first = x.data();
    T* __restrict o = out.data();
    if (rows == 0) {
        std::fill(o, o + cols, T(0));
        return;
    }
    for (std::size_t j = 0; j < cols; ++j) o[j] = T(0) + first[j];
    fold_rows(x.data(), 1, rows, cols, o, [](T a, T b) { return a + b; });
}

template <class T>
void softmax_columns(const Matrix<T>& z, Matrix<T>& probabilities, Matrix<T>& max, Matrix<T>& log_sum) {
    const std::size_t rows = z.shape()[0], cols = z.shape()[1];
    ensure_shape(probabilities, shape_of(z));
    column_max(z, max);  // subtracting the column max keeps exp() from overflowing
    T* p = probabilities.data();
    with_column(z.data(), max.data(), rows, cols, p, [](T v, T m) { return v - m; });
    exp_nonpositive(p, probabilities.size());
    column_sum(probabilities, log_sum);
    T* __restrict s = log_sum.data();
    for (std::size_t j = 0; j < cols; ++j) s[j] = T(1) / s[j];
    with_column(p, s, rows, cols, p, [](T v, T inverse) { return v * inverse; });
    log_each(s, cols);
    for (std::size_t j = 0; j < cols; ++j) s[j] = -s[j];  // log(sum) from its reciprocal
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
    template void gemm<T>(const Matrix<T>&, Transpose, const Matrix<T>&, Transpose, Matrix<T>&, T, T); \
    template void gemm<T>(Transpose, Transpose, std::size_t, std::size_t, std::size_t, T, const T*, std::size_t, \
                          const T*, std::size_t, T, T*, std::size_t);                               \
    template void sum_to<T>(const Matrix<T>&, Matrix<T>&, bool, T);                               \
    template void exp_nonpositive<T>(T*, std::size_t);                                            \
    template void log_each<T>(T*, std::size_t);                                                   \
    template void column_max<T>(const Matrix<T>&, Matrix<T>&);                                    \
    template void column_sum<T>(const Matrix<T>&, Matrix<T>&);                                    \
    template void softmax_columns<T>(const Matrix<T>&, Matrix<T>&, Matrix<T>&, Matrix<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff::kernels
