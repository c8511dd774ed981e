#include "autodiff/kernels.hpp"

#include <algorithm>
#include <cmath>

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
T row_sum(const T* x, std::size_t n) {
    // Eight independent partial sums: the compiler may not reorder a floating-point sum
    // by itself, but it vectorises eight separate ones.
    T part[8] = {};
    std::size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (std::size_t l = 0; l < 8; ++l) part[l] += x[j + l];
    T total = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; j < n; ++j) total += x[j];
    return total;
}

template <class T>
void gemm(const Matrix<T>& A, Transpose ta, const Matrix<T>& B, Transpose tb, Matrix<T>& C, T alpha, T beta) {
    const int m = static_cast<int>(C.shape()[0]);
    const int n = static_cast<int>(C.shape()[1]);
    const int k = static_cast<int>(ta == Transpose::yes ? A.shape()[0] : A.shape()[1]);
    gemm_call(cblas(ta), cblas(tb), m, n, k, alpha, A.data(), static_cast<int>(A.shape()[1]), B.data(),
              static_cast<int>(B.shape()[1]), beta, C.data(), static_cast<int>(C.shape()[1]));
}

template <class T>
void sum_to(const Matrix<T>& g, Matrix<T>& target, bool overwrite, T factor) {
    const std::size_t rows = g.shape()[0], cols = g.shape()[1];
    const std::size_t t_rows = target.shape()[0], t_cols = target.shape()[1];
    if (overwrite) std::fill(target.begin(), target.end(), T(0));
    const T* in = g.data();
    T* out = target.data();
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

template <class T>
void column_max(const Matrix<T>& x, Matrix<T>& out) {
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    ensure_shape(out, {1, cols});
    std::copy(x.data(), x.data() + cols, out.data());
    for (std::size_t i = 1; i < rows; ++i) {
        const T* row = x.data() + i * cols;
        for (std::size_t j = 0; j < cols; ++j) out.data()[j] = std::max(out.data()[j], row[j]);
    }
}

template <class T>
void column_sum(const Matrix<T>& x, Matrix<T>& out) {
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    ensure_shape(out, {1, cols});
    std::fill(out.begin(), out.end(), T(0));
    for (std::size_t i = 0; i < rows; ++i) {
        const T* row = x.data() + i * cols;
        for (std::size_t j = 0; j < cols; ++j) out.data()[j] += row[j];
    }
}

template <class T>
void softmax_columns(const Matrix<T>& z, Matrix<T>& probabilities, Matrix<T>& log_norm, Matrix<T>& sums) {
    const std::size_t rows = z.shape()[0], cols = z.shape()[1];
    ensure_shape(probabilities, shape_of(z));
    column_max(z, log_norm);  // subtracting the column max keeps exp() from overflowing
    const T* max = log_norm.data();
    for (std::size_t i = 0; i < rows; ++i) {
        const T* z_row = z.data() + i * cols;
        T* p_row = probabilities.data() + i * cols;
        for (std::size_t j = 0; j < cols; ++j) p_row[j] = std::exp(z_row[j] - max[j]);
    }
    column_sum(probabilities, sums);
    T* s = sums.data();
    for (std::size_t j = 0; j < cols; ++j) {
        log_norm.data()[j] += std::log(s[j]);
        s[j] = T(1) / s[j];
    }
    for (std::size_t i = 0; i < rows; ++i) {
        T* p_row = probabilities.data() + i * cols;
        for (std::size_t j = 0; j < cols; ++j) p_row[j] *= s[j];
    }
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
    template void gemm<T>(const Matrix<T>&, Transpose, const Matrix<T>&, Transpose, Matrix<T>&, T, T); \
    template void sum_to<T>(const Matrix<T>&, Matrix<T>&, bool, T);                               \
    template T row_sum<T>(const T*, std::size_t);                                                 \
    template void column_max<T>(const Matrix<T>&, Matrix<T>&);                                    \
    template void column_sum<T>(const Matrix<T>&, Matrix<T>&);                                    \
    template void softmax_columns<T>(const Matrix<T>&, Matrix<T>&, Matrix<T>&, Matrix<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff::kernels
