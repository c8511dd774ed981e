// conv2d on images stored one per column: one tape entry, im2col row copies plus GEMMs.
//
// x is (C*H*W) x m, so the input pixel (c, i, j) is one contiguous row of m values, and
// the im2col matrix's row for tap (c, ki, kj) at output position p = (oh, ow) is a copy of
// one such row. Laid out as K x (P*m) (K = C*kh*kw taps, P = H'*W' positions), it gives
//     Y = W @ col          Y seen as C_out x (P*m) is exactly y, (C_out*P) x m, row-major
//     dW = dY @ col^T      db = sum of dY over positions and examples
//     dcol = W^T @ dY      dx = the rows of dcol added back where they were copied from
// with no transposed copies. col is built for a band of output rows at a time, so its
// workspace stays a few MiB whatever the batch (or one output row's, if that is more: it
// counts against the tape's memory limit, check_workspace); the backward rebuilds it band by band
// (row copies are cheap next to the GEMMs) unless the whole image fitted in one band.

#include <algorithm>
#include <climits>
#include <cstdint>

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"
#include "autodiff/ops/window.hpp"

namespace autodiff {

using kernels::gemm;
using kernels::Transpose;
using ops::WindowGeometry;

namespace {

// Output rows per band: as many as keep the band's col under this size (at least one).
constexpr std::size_t band_bytes = std::size_t(4) << 20;

template <class T>
std::size_t band_rows(const WindowGeometry& g, std::size_t m) {
    const std::size_t row_bytes = g.channels * g.taps() * g.out_w * m * sizeof(T);
    return std::min(g.out_h, std::max<std::size_t>(1, band_bytes / row_bytes));
}

// A band holds at least one output row of col (K taps x out_w positions x m examples), and
// the backward a dcol of the same size: with a wide output and a long kernel that row alone
// can be far larger than the image. Both count against the tape's memory limit. (Once one
// row's bytes fit, a band's do: band_rows keeps it at one row or under band_bytes.)
template <class T>
void check_workspace(const Tape<T>& tape, const WindowGeometry& g, std::size_t m) {
    std::size_t row_bytes = 0;
    const bool fits = multiply_fits(g.channels * g.taps(), g.out_w * m, row_bytes) &&
                      multiply_fits(row_bytes, 2 * sizeof(T), row_bytes);
    const std::size_t workspace = fits ? band_rows<T>(g, m) * row_bytes : SIZE_MAX;
    if (!fits || (tape.memory_limit() != 0 && workspace > tape.memory_limit()))
        ops::fail("conv2d", "its im2col workspace needs " + std::to_string(workspace) + " bytes (" +
                                std::to_string(g.channels * g.taps()) + " taps x " + std::to_string(g.out_w) +
                                " output columns x " + std::to_string(m) +
                                " examples per output row, twice for the backward), above the tape's memory limit of " +
                                std::to_string(tape.memory_limit()) +
                                " bytes: use a smaller batch or kernel, or raise Tape::set_memory_limit");
}

// Visits the col band for output rows [oh0, oh1): `gap(col_part, length)` where a tap
// falls in the padding, `run(col_part, input_row, length)` where it reads input rows
// input_row, input_row + 1, ... (one row with stride > 1; a run of them with stride 1,
// since neighbouring output columns then read neighbouring pixels, which are adjacent rows).
// (Col is T or const T.)
template <class Col, class Gap, class Run>
void visit_band(const WindowGeometry& g, std::size_t oh0, std::size_t oh1, std::size_t m, Col* col, Gap&& gap,
                Run&& run) {
    const std::size_t ld = (oh1 - oh0) * g.out_w * m;  // one tap's row of the band
    const std::size_t row_len = g.out_w * m;           // one output row within it
    for (std::size_t c = 0; c < g.channels; ++c)
        for (std::size_t ki = 0; ki < g.kernel_h; ++ki)
            for (std::size_t kj = 0; kj < g.kernel_w; ++kj, col += ld) {
                const ops::Span rows = g.valid_rows(ki), cols = g.valid_cols(kj);
                for (std::size_t oh = oh0; oh < oh1; ++oh) {
                    Col* block = col + (oh - oh0) * row_len;
                    if (oh < rows.begin || oh >= rows.end || cols.begin == cols.end) {
                        gap(block, row_len);
                        continue;
                    }
                    gap(block, cols.begin * m);
                    gap(block + cols.end * m, (g.out_w - cols.end) * m);
                    if (g.stride == 1) {
                        run(block + cols.begin * m, g.input_row(c, oh, cols.begin, ki, kj),
                            (cols.end - cols.begin) * m);
                    } else {
                        for (std::size_t ow = cols.begin; ow < cols.end; ++ow)
                            run(block + ow * m, g.input_row(c, oh, ow, ki, kj), m);
                    }
                }
            }
}

template <class T>
void im2col(const WindowGeometry& g, const T* x, std::size_t m, std::size_t oh0, std::size_t oh1, T* col) {
    visit_band(
        g, oh0, oh1, m, col, [](T* part, std::size_t n) { std::fill_n(part, n, T(0)); },
        [&](T* part, std::size_t row, std::size_t n) { std::copy_n(x + row * m, n, part); });
}

template <class T>
void col2im_add(const WindowGeometry& g, const T* col, std::size_t m, std::size_t oh0, std::size_t oh1, T* dx) {
    visit_band(
        g, oh0, oh1, m, col, [](const T*, std::size_t) {},
        [&](const T* part, std::size_t row, std::size_t n) {
            T* __restrict out = dx + row * m;
            for (std::size_t k = 0; k < n; ++k) out[k] += part[k];
        });
}

template <class T>
void conv2d_forward(Tape<T>& tape, Node<T>& y) {
    const WindowGeometry g = ops::load(y);
    const Matrix<T>& x = tape.input(y, 0);
    const Matrix<T>& W = tape.input(y, 1);
    const std::size_t m = x.shape()[1], out_channels = W.shape()[0], K = W.shape()[1], P = g.positions();
    T* out = y.value.data();
    T beta = T(0);
    if (y.arity == 3) {  // start from the bias, let the GEMMs add W @ col
        const T* b = tape.input(y, 2).data();
        for (std::size_t o = 0; o < out_channels; ++o) std::fill_n(out + o * P * m, P * m, b[o]);
        beta = T(1);
    }
    const std::size_t band = band_rows<T>(g, m);
    Matrix<T>& col = y.work()[0];
    ensure_shape(col, {K, band * g.out_w * m});
    for (std::size_t oh0 = 0; oh0 < g.out_h; oh0 += band) {
        const std::size_t oh1 = std::min(g.out_h, oh0 + band), n = (oh1 - oh0) * g.out_w * m;
        im2col(g, x.data(), m, oh0, oh1, col.data());
        gemm(Transpose::no, Transpose::no, out_channels, n, K, T(1), W.data(), K, col.data(), n, beta,
             out + oh0 * g.out_w * m, P * m);
    }
}

template <class T>
void conv2d_backward(Tape<T>& tape, Node<T>& y) {
    const WindowGeometry g = ops::load(y);
    const Matrix<T>& x = tape.input(y, 0);
    const Matrix<T>& W = tape.input(y, 1);
    const std::size_t m = x.shape()[1], out_channels = W.shape()[0], K = W.shape()[1], P = g.positions();
    const T* dy = y.grad.data();
    if (y.arity == 3 && tape.needs_grad(y, 2)) {  // db[o] = sum of channel o's block of dY
        GradientSink<T> db = ops::zeroed_sink(tape, y, 2);
        for (std::size_t o = 0; o < out_channels; ++o) db.grad.data()[o] += kernels::row_sum(dy + o * P * m, P * m);
    }
    const bool need_W = tape.needs_grad(y, 1), need_x = tape.needs_grad(y, 0);
    if (!need_W && !need_x) return;
    T* dW = need_W ? ops::zeroed_sink(tape, y, 1).grad.data() : nullptr;
    T* dx = need_x ? ops::zeroed_sink(tape, y, 0).grad.data() : nullptr;
    const std::size_t band = band_rows<T>(g, m);
    Matrix<T>& col = y.work()[0];  // the forward's im2col, still whole if one band held it
    Matrix<T>& dcol = y.work()[1];
    if (need_x) ensure_shape(dcol, shape_of(col));
    for (std::size_t oh0 = 0; oh0 < g.out_h; oh0 += band) {
        const std::size_t oh1 = std::min(g.out_h, oh0 + band), n = (oh1 - oh0) * g.out_w * m;
        const T* dy_band = dy + oh0 * g.out_w * m;
        if (need_W) {
            if (band < g.out_h) im2col(g, x.data(), m, oh0, oh1, col.data());
            gemm(Transpose::no, Transpose::yes, out_channels, K, n, T(1), dy_band, P * m, col.data(), n, T(1), dW, K);
        }
        if (need_x) {
            gemm(Transpose::yes, Transpose::no, K, n, out_channels, T(1), W.data(), K, dy_band, P * m, T(0),
                 dcol.data(), n);
            col2im_add(g, dcol.data(), m, oh0, oh1, dx);
        }
    }
}

template <class T>
Var<T> conv2d_impl(const Var<T>& x, ImageShape image, const Var<T>& W, const Var<T>* b, Window window) {
    const char* op = "conv2d";
    const ops::HeldTape<T> held = b ? ops::HeldTape<T>(op, {x, W, *b}) : ops::HeldTape<T>(op, {x, W});
    Tape<T>& tape = held.tape();
    const WindowGeometry g = ops::window_geometry(op, x, image, window, false);
    const std::size_t K = g.channels * g.taps();
    if (W.cols() != K)
        ops::fail(op, "W is " + to_string(W.shape()) + " but the image has " + std::to_string(g.channels) +
                          " channels and the kernel is " + std::to_string(g.kernel_h) + "x" +
                          std::to_string(g.kernel_w) + ": W must be C_out x (C_in*kh*kw) = C_out x " +
                          std::to_string(K) + " (one filter per row, taps in (c, ki, kj) order)");
    if (b && b->shape() != Shape{W.rows(), 1})
        ops::fail(op, "b is " + to_string(b->shape()) + " but W is " + to_string(W.shape()) + ": b must be " +
                          std::to_string(W.rows()) + "x1 (one bias per output channel)");
    const std::size_t P = g.positions(), m = x.cols();
    if (K > INT_MAX || W.rows() > INT_MAX || P > INT_MAX / m)  // m >= 1: x is a matrix
        ops::fail(op, "x is " + to_string(x.shape()) + " and W is " + to_string(W.shape()) + ": " +
                          std::to_string(P) + " output positions x " + std::to_string(m) +
                          " examples exceed BLAS's int sizes; split the batch");
    check_workspace<T>(tape, g, m);
    auto setup = [&](Node<T>& y) { ops::store(y, g); };
    const Shape shape{W.rows() * P, m};
    if (b) return ops::record_library_op(tape, op, {x, W, *b}, shape, conv2d_forward<T>, conv2d_backward<T>, setup);
    return ops::record_library_op(tape, op, {x, W}, shape, conv2d_forward<T>, conv2d_backward<T>, setup);
}

}  // namespace

template <class T>
Var<T> conv2d(const Var<T>& x, ImageShape image, const Var<T>& W, const Var<T>& b, Window window) {
    return conv2d_impl(x, image, W, &b, window);
}

template <class T>
Var<T> conv2d(const Var<T>& x, ImageShape image, const Var<T>& W, Window window) {
    return conv2d_impl<T>(x, image, W, nullptr, window);
}

#define TAPEGRAD_INSTANTIATE(T)                                                     \
    template Var<T> conv2d<T>(const Var<T>&, ImageShape, const Var<T>&, const Var<T>&, Window);         \
    template Var<T> conv2d<T>(const Var<T>&, ImageShape, const Var<T>&, Window);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
