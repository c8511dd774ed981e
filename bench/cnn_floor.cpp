// bench/cnn_floor.cpp: the CNN step's GEMM floor: the matrix products of the im2col
// formulation (forward, then dW and dX of each layer that needs them), on preallocated
// buffers, and nothing else: no im2col copies, no relu, pooling, softmax or update.
// With x a (C*H*W) x m batch, col is (C*kh*kw) x (H'*W'*m) and
//     conv:   Y = W·col        dW = dY·colᵀ       dcol = Wᵀ·dY (not for conv1: x is data)
//     linear: Z = W·A          dW = dZ·Aᵀ         dA = Wᵀ·dZ
#include "cnn_harness.hpp"
#include "handwritten_step.hpp"

namespace {

template <class T>
class CnnGemmFloor {
    using P = bench::CnnProblem<T>;
    static constexpr std::size_t taps = P::kernel * P::kernel;
    static constexpr std::size_t positions1 = P::image * P::image, positions2 = positions1 / 4;

public:
    explicit CnnGemmFloor(const bench::CnnProblem<T>& p)
        : m_(p.m), W1_(p.W1), W2_(p.W2), W3_(p.W3),
          col1_(taps * positions1 * m_, T(0.5)), y1_(P::channels1 * positions1 * m_),
          col2_(P::channels1 * taps * positions2 * m_, T(0.5)), y2_(P::channels2 * positions2 * m_),
          a3_(P::features3 * m_, T(0.5)), z3_(P::classes * m_), dz3_(P::classes * m_, T(1e-3)),
          dW3_(W3_.size()), da3_(a3_.size()), dy2_(y2_.size(), T(1e-3)), dW2_(W2_.size()), dcol2_(col2_.size()),
          dy1_(y1_.size(), T(1e-3)), dW1_(W1_.size()) {}

    void step() {
        using bench::gemm;
        const std::size_t n1 = positions1 * m_, n2 = positions2 * m_, K2 = P::channels1 * taps;
        gemm(false, false, P::channels1, n1, taps, T(1), W1_.data(), taps, col1_.data(), n1, T(0), y1_.data(), n1);
        gemm(false, false, P::channels2, n2, K2, T(1), W2_.data(), K2, col2_.data(), n2, T(0), y2_.data(), n2);
        gemm(false, false, P::classes, m_, P::features3, T(1), W3_.data(), P::features3, a3_.data(), m_, T(0),
             z3_.data(), m_);
        gemm(false, true, P::classes, P::features3, m_, T(1), dz3_.data(), m_, a3_.data(), m_, T(0), dW3_.data(),
             P::features3);
        gemm(true, false, P::features3, m_, P::classes, T(1), W3_.data(), P::features3, dz3_.data(), m_, T(0),
             da3_.data(), m_);
        gemm(false, true, P::channels2, K2, n2, T(1), dy2_.data(), n2, col2_.data(), n2, T(0), dW2_.data(), K2);
        gemm(true, false, K2, n2, P::channels2, T(1), W2_.data(), K2, dy2_.data(), n2, T(0), dcol2_.data(), n2);
        gemm(false, true, P::channels1, taps, n1, T(1), dy1_.data(), n1, col1_.data(), n1, T(0), dW1_.data(), taps);
    }

    double loss() const { return 0.0; }

private:
    std::size_t m_;
    std::vector<T> W1_, W2_, W3_, col1_, y1_, col2_, y2_, a3_, z3_, dz3_, dW3_, da3_, dy2_, dW2_, dcol2_, dy1_, dW1_;
};

}  // namespace

TAPEGRAD_BENCH_CNN_STEP(floor, CnnGemmFloor);
