// bench/handwritten_step.hpp: the tuned hand-written training step that tapegrad's engine
// is judged against, and the floor (the same step's matrix products and nothing else).
//
// Network: Z_l = W_l·A_{l-1} + b_l, A_l = relu(Z_l) for hidden layers, softmax on the last,
// mean cross-entropy loss. Layout as in the notebook: W is n_out x n_in, activations are
// features x examples, all row-major. Backward: dZ_last = (softmax − Y)/m,
// dW_l = dZ_l·A_{l-1}ᵀ, db_l = Σ_examples dZ_l, dZ_{l-1} = (W_lᵀ·dZ_l) ⊙ (A_{l-1} > 0).
// SGD: W -= lr·dW, b -= lr·db.
//
// Every buffer is allocated in the constructor; step() allocates nothing.
// The matrix products are cblas_{s,d}gemm called directly; everything else is plain loops.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "harness.hpp"

namespace bench {

// ---- gemm, row-major, C = alpha·op(A)·op(B) + beta·C -------------------------------
inline void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, double alpha,
                 const double* A, std::size_t lda, const double* B, std::size_t ldb, double beta,
                 double* C, std::size_t ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
inline void gemm(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                 const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta,
                 float* C, std::size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// ---- exp for x <= 0 (softmax after subtracting the column max), branch-free so that
// GCC vectorises the loop that calls it. exp(x) = 2^n · exp(r), n = round(x/ln2),
// |r| <= ln2/2, exp(r) by its Taylor polynomial (degree 13 in double: error < 1e-17
// relative; degree 7 in float: < 1e-8). Within 2 ulp of std::exp (checked by --check).
// Below -708 (float: -87) the result is clamped to about 2^-1022 (float: 2^-126) instead of
// a denormal or 0: a softmax term of 1e-308 changes nothing, and denormals are slow.
// The clamp is on the integer exponent: a floating-point clamp makes GCC branch.
inline double exp_nonpositive(double x) {
    const double shifter = 0x1.8p52;  // adding it rounds to an integer held in the low bits
    const double t = x * 1.4426950408889634 + shifter;
    const double n = t - shifter;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    std::int64_t tb, sb;
    std::memcpy(&tb, &t, sizeof t);
    const double sh = shifter;
    std::memcpy(&sb, &sh, sizeof sh);
    std::int64_t e = tb - sb;  // n; clamped so that 2^n stays normal
    e = e < -1022 ? -1022 : e;
    const std::int64_t bits = (e + 1023) << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
inline float exp_nonpositive(float x) {
    const float shifter = 0x1.8p23f;
    const float t = x * 1.44269504f + shifter;
    const float n = t - shifter;
    const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    std::int32_t tb, sb;
    std::memcpy(&tb, &t, sizeof t);
    const float sh = shifter;
    std::memcpy(&sb, &sh, sizeof sh);
    std::int32_t e = tb - sb;
    e = e < -126 ? -126 : e;
    const std::int32_t bits = (e + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// Variant flags of the hand-written step (measured in bench/README.md).
enum StepFlags : unsigned {
    kBiasPrefill = 1u,  // Z filled with b, then gemm beta=1 (else gemm beta=0, bias added in the relu pass)
    kFuseMaskDb = 2u,   // relu mask applied in the same pass as db's row sums (else two passes)
    kFusedSgd = 4u,     // SGD folded into the dW gemm (W -= lr·dZ·Aᵀ, alpha=-lr, beta=1): no dW buffer
    kStdExp = 8u,       // std::exp in the softmax (else exp_nonpositive, which vectorises)
};

// The reference: what the engine's targets are measured against. It computes the
// gradients into their own buffers and then updates, as an optimizer would.
constexpr unsigned kReferenceFlags = kFuseMaskDb;

template <class T, unsigned Flags = kReferenceFlags>
class HandwrittenStepT {
public:
    explicit HandwrittenStepT(const Problem<T>& p)
        : sizes_(p.sizes), m_(p.m), lr_(p.lr), X_(p.X), Y_(p.Y), W_(p.W), b_(p.b),
          mx_(p.m), sum_(p.m), zy_(p.m) {
        const std::size_t L = p.layers();
        for (std::size_t l = 0; l < L; ++l) {
            const std::size_t n_in = sizes_[l], n_out = sizes_[l + 1];
            A_.emplace_back(n_out * m_);
            dZ_.emplace_back(l + 1 < L ? n_out * m_ : 0);  // the last layer's dZ lives in A_.back()
            dW_.emplace_back((Flags & kFusedSgd) ? 0 : n_out * n_in);
            db_.emplace_back(n_out);
        }
        // exp underflow guard and log-of-product chunk (see loss computation)
        const double log_max = std::log(double(std::numeric_limits<T>::max()));
        chunk_ = std::max<std::size_t>(1, std::size_t(0.5 * log_max / std::log(double(sizes_.back()))));
    }

    void step() {
        forward();
        backward_and_update();
    }

    double loss() const { return loss_; }
    const std::vector<std::vector<T>>& weights() const { return W_; }
    const std::vector<std::vector<T>>& biases() const { return b_; }

private:
    void forward() {
        const std::size_t L = sizes_.size() - 1;
        const T* A_prev = X_.data();
        for (std::size_t l = 0; l < L; ++l) {
            const std::size_t n_in = sizes_[l], n_out = sizes_[l + 1];
            T* Z = A_[l].data();
            const T* b = b_[l].data();
            const bool last = l + 1 == L;
            if (Flags & kBiasPrefill) {
                for (std::size_t i = 0; i < n_out; ++i) std::fill(Z + i * m_, Z + (i + 1) * m_, b[i]);
                gemm(false, false, n_out, m_, n_in, T(1), W_[l].data(), n_in, A_prev, m_, T(1), Z, m_);
                if (!last)
                    for (std::size_t k = 0; k < n_out * m_; ++k) Z[k] = std::max(Z[k], T(0));
            } else {
                gemm(false, false, n_out, m_, n_in, T(1), W_[l].data(), n_in, A_prev, m_, T(0), Z, m_);
                for (std::size_t i = 0; i < n_out; ++i) {
                    T* z = Z + i * m_;
                    const T bi = b[i];
                    if (last)
                        for (std::size_t j = 0; j < m_; ++j) z[j] += bi;
                    else
                        for (std::size_t j = 0; j < m_; ++j) z[j] = std::max(z[j] + bi, T(0));
                }
            }
            A_prev = Z;
        }
        softmax_xent_grad(A_.back().data(), sizes_.back());
    }

    // In place: Z (n x m) becomes dZ = (softmax(Z) − Y)/m; sets loss_ and db of the last layer.
    void softmax_xent_grad(T* Z, std::size_t n) {
        T* mx = mx_.data();
        T* s = sum_.data();
        T* zy = zy_.data();
        const T* Y = Y_.data();
        std::copy(Z, Z + m_, mx);
        for (std::size_t i = 1; i < n; ++i) {
            const T* z = Z + i * m_;
            for (std::size_t j = 0; j < m_; ++j) mx[j] = std::max(mx[j], z[j]);
        }
        std::fill(s, s + m_, T(0));
        std::fill(zy, zy + m_, T(0));
        for (std::size_t i = 0; i < n; ++i) exp_row(Z + i * m_, Y + i * m_, mx, s, zy, m_);
        // loss_j = log(s_j) − (z_{y_j} − max_j), and Σ_j log s_j = log Π_j s_j taken over chunks
        // short enough not to overflow (each s_j lies in [1, n]): m/chunk logs instead of m.
        loss_ = (sum_log_chunked(s, m_, chunk_) - double(lane_sum(zy, m_))) / double(m_);
        for (std::size_t j = 0; j < m_; ++j) s[j] = T(1) / s[j];
        const T inv_m = T(1) / T(m_);
        T* db = db_.back().data();
        for (std::size_t i = 0; i < n; ++i) db[i] = grad_row(Z + i * m_, Y + i * m_, s, inv_m, m_);
    }

    // The row loops below keep kLanes partial sums: with one accumulator a sum is a serial
    // chain (GCC may not reorder floating-point additions), with kLanes it vectorises.
    static constexpr std::size_t kLanes = 64 / sizeof(T);

    static T lane_sum(const T* __restrict x, std::size_t m) {
        T lanes[kLanes] = {};
        std::size_t j = 0;
        for (; j + kLanes <= m; j += kLanes)
            for (std::size_t k = 0; k < kLanes; ++k) lanes[k] += x[j + k];
        T acc = T(0);
        for (; j < m; ++j) acc += x[j];
        for (std::size_t k = 0; k < kLanes; ++k) acc += lanes[k];
        return acc;
    }

    // Σ_j log s_j with s_j in [1, n]: products of at most `chunk` terms per lane, then logs.
    static double sum_log_chunked(const T* __restrict s, std::size_t m, std::size_t chunk) {
        double total = 0.0;
        std::size_t j = 0;
        const std::size_t block = kLanes * chunk;
        for (; j + block <= m; j += block) {
            T prod[kLanes];
            for (std::size_t k = 0; k < kLanes; ++k) prod[k] = T(1);
            for (std::size_t c = 0; c < chunk; ++c)
                for (std::size_t k = 0; k < kLanes; ++k) prod[k] *= s[j + c * kLanes + k];
            for (std::size_t k = 0; k < kLanes; ++k) total += std::log(double(prod[k]));
        }
        while (j < m) {
            const std::size_t end = std::min(m, j + chunk);
            double prod = 1.0;
            for (; j < end; ++j) prod *= double(s[j]);
            total += std::log(prod);
        }
        return total;
    }

    // z = (z·inv_s − y)·inv_m (softmax normalised, minus the one-hot, over m); returns Σ z.
    static T grad_row(T* __restrict z, const T* __restrict y, const T* __restrict inv_s, T inv_m,
                      std::size_t m) {
        T lanes[kLanes] = {};
        std::size_t j = 0;
        for (; j + kLanes <= m; j += kLanes)
            for (std::size_t k = 0; k < kLanes; ++k) {
                const T g = (z[j + k] * inv_s[j + k] - y[j + k]) * inv_m;
                z[j + k] = g;
                lanes[k] += g;
            }
        T acc = T(0);
        for (; j < m; ++j) {
            const T g = (z[j] * inv_s[j] - y[j]) * inv_m;
            z[j] = g;
            acc += g;
        }
        for (std::size_t k = 0; k < kLanes; ++k) acc += lanes[k];
        return acc;
    }

    // d = a > 0 ? d : 0 (the relu mask, read off the activation); returns Σ d.
    static T mask_row(T* __restrict d, const T* __restrict a, std::size_t m) {
        T lanes[kLanes] = {};
        std::size_t j = 0;
        for (; j + kLanes <= m; j += kLanes)
            for (std::size_t k = 0; k < kLanes; ++k) {
                const T g = a[j + k] > T(0) ? d[j + k] : T(0);
                d[j + k] = g;
                lanes[k] += g;
            }
        T acc = T(0);
        for (; j < m; ++j) {
            const T g = a[j] > T(0) ? d[j] : T(0);
            d[j] = g;
            acc += g;
        }
        for (std::size_t k = 0; k < kLanes; ++k) acc += lanes[k];
        return acc;
    }

    // z = exp(z − mx), s += z, zy += y·(z − mx): one row of the softmax, vectorised.
    static void exp_row(T* __restrict z, const T* __restrict y, const T* __restrict mx, T* __restrict s,
                        T* __restrict zy, std::size_t m) {
        for (std::size_t j = 0; j < m; ++j) {
            const T shifted = z[j] - mx[j];
            zy[j] += y[j] * shifted;
            const T e = (Flags & kStdExp) ? std::exp(shifted) : exp_nonpositive(shifted);
            z[j] = e;
            s[j] += e;
        }
    }

    void backward_and_update() {
        const std::size_t L = sizes_.size() - 1;
        for (std::size_t l = L; l-- > 0;) {
            const std::size_t n_in = sizes_[l], n_out = sizes_[l + 1];
            const T* dZ = (l + 1 == L) ? A_[l].data() : dZ_[l].data();
            const T* A_prev = l == 0 ? X_.data() : A_[l - 1].data();
            if (l > 0) {
                // dZ_{l-1} = (W_lᵀ·dZ_l) ⊙ (A_{l-1} > 0), with the old W_l
                T* dA = dZ_[l - 1].data();
                gemm(true, false, n_in, m_, n_out, T(1), W_[l].data(), n_in, dZ, m_, T(0), dA, m_);
                apply_relu_mask(dA, A_[l - 1].data(), n_in, db_[l - 1].data());
            }
            T* W = W_[l].data();
            T* b = b_[l].data();
            const T* db = db_[l].data();
            if (Flags & kFusedSgd) {
                gemm(false, true, n_out, n_in, m_, -lr_, dZ, m_, A_prev, m_, T(1), W, n_in);
            } else {
                T* dW = dW_[l].data();
                gemm(false, true, n_out, n_in, m_, T(1), dZ, m_, A_prev, m_, T(0), dW, n_in);
                for (std::size_t k = 0; k < n_out * n_in; ++k) W[k] -= lr_ * dW[k];
            }
            for (std::size_t i = 0; i < n_out; ++i) b[i] -= lr_ * db[i];
        }
    }

    // dA ⊙ (A > 0) in place, and db = its row sums.
    void apply_relu_mask(T* dA, const T* A, std::size_t n, T* db) {
        if (Flags & kFuseMaskDb) {
            for (std::size_t i = 0; i < n; ++i) db[i] = mask_row(dA + i * m_, A + i * m_, m_);
        } else {
            for (std::size_t k = 0; k < n * m_; ++k) dA[k] = A[k] > T(0) ? dA[k] : T(0);
            for (std::size_t i = 0; i < n; ++i) db[i] = lane_sum(dA + i * m_, m_);
        }
    }

    std::vector<std::size_t> sizes_;
    std::size_t m_;
    T lr_;
    std::vector<T> X_, Y_;
    std::vector<std::vector<T>> W_, b_;
    std::vector<std::vector<T>> A_, dZ_, dW_, db_;  // A_[l] holds Z_l then A_l (relu in place)
    std::vector<T> mx_, sum_, zy_;                 // per-example scratch of the softmax
    std::size_t chunk_ = 1;
    double loss_ = 0.0;
};

template <class T> using HandwrittenStep = HandwrittenStepT<T, kReferenceFlags>;

// The floor: exactly the gemm calls of HandwrittenStep (same shapes, transposes, alpha,
// beta, buffers), nothing else. Values drift (Z accumulates with beta=1, nothing is
// updated) but stay finite and normal; only the time is meaningful. loss() is NaN.
template <class T>
class MatmulFloor {
public:
    explicit MatmulFloor(const Problem<T>& p) : sizes_(p.sizes), m_(p.m), X_(p.X), W_(p.W) {
        const std::size_t L = p.layers();
        for (std::size_t l = 0; l < L; ++l) {
            const std::size_t n_in = sizes_[l], n_out = sizes_[l + 1];
            A_.emplace_back(n_out * m_, T(0));
            dZ_.emplace_back(n_out * m_, T(1e-3));
            dW_.emplace_back(n_out * n_in, T(0));
        }
    }

    void step() {
        const std::size_t L = sizes_.size() - 1;
        const bool prefill = kReferenceFlags & kBiasPrefill;
        const T* A_prev = X_.data();
        for (std::size_t l = 0; l < L; ++l) {
            const std::size_t n_in = sizes_[l], n_out = sizes_[l + 1];
            gemm(false, false, n_out, m_, n_in, T(1), W_[l].data(), n_in, A_prev, m_, T(prefill ? 1 : 0),
                 A_[l].data(), m_);
            A_prev = A_[l].data();
        }
        for (std::size_t l = L; l-- > 0;) {
            const std::size_t n_in = sizes_[l], n_out = sizes_[l + 1];
            const T* A_prev_l = l == 0 ? X_.data() : A_[l - 1].data();
            if (l > 0)
                gemm(true, false, n_in, m_, n_out, T(1), W_[l].data(), n_in, dZ_[l].data(), m_, T(0),
                     dZ_[l - 1].data(), m_);
            gemm(false, true, n_out, n_in, m_, T(1), dZ_[l].data(), m_, A_prev_l, m_, T(0), dW_[l].data(), n_in);
        }
    }

    double loss() const { return std::numeric_limits<double>::quiet_NaN(); }

private:
    std::vector<std::size_t> sizes_;
    std::size_t m_;
    std::vector<T> X_;
    std::vector<std::vector<T>> W_;
    std::vector<std::vector<T>> A_, dZ_, dW_;
};

}  // namespace bench
