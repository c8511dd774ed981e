// max_pool2d and avg_pool2d on images stored one per column: one tape entry each.
// Every pixel is a row of m values (one per example), so a window is a handful of row
// operations: the max (or sum) of the window's input rows is the output row.
// max_pool2d keeps the winning tap of each output value (its argmax) in node.saved(), and
// its backward sends each gradient back to that tap only.

#include <algorithm>
#include <limits>

#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"
#include "autodiff/ops/window.hpp"

namespace autodiff {

using ops::WindowGeometry;

namespace {

// For every output row o (channel c, position oh, ow), calls start(o, first_tap), then
// tap(o, k, input_row) for each tap k = ki*kw + kj of its window that lands inside the
// image, in row-major order (the padding is never visited).
template <class Start, class Tap>
void visit_windows(const WindowGeometry& g, Start&& start, Tap&& tap) {
    std::size_t o = 0;
    for (std::size_t c = 0; c < g.channels; ++c)
        for (std::size_t oh = 0; oh < g.out_h; ++oh) {
            const ops::Span rows = g.taps_in_rows(oh);
            for (std::size_t ow = 0; ow < g.out_w; ++ow, ++o) {
                const ops::Span cols = g.taps_in_cols(ow);
                start(o, rows.begin * g.kernel_w + cols.begin);
                for (std::size_t ki = rows.begin; ki < rows.end; ++ki)
                    for (std::size_t kj = cols.begin; kj < cols.end; ++kj)
                        tap(o, ki * g.kernel_w + kj, g.input_row(c, oh, ow, ki, kj));
            }
        }
}

// PyTorch's rule: start from -inf at the window's first in-image tap, and take a value
// when it is larger or NaN (so a NaN wins and propagates).
template <class T>
void max_pool_forward(Tape<T>& tape, Node<T>& y) {
    const WindowGeometry g = ops::load(y);
    const T* x = tape.input(y, 0).data();
    const std::size_t m = y.value.shape()[1];
    ensure_shape(y.saved(), shape_of(y.value));
    T* best = y.value.data();
    T* arg = y.saved().data();  // the winning tap, exact as a T (checked when recorded)
    visit_windows(
        g,
        [&](std::size_t o, std::size_t first) {
            std::fill_n(best + o * m, m, -std::numeric_limits<T>::infinity());
            std::fill_n(arg + o * m, m, T(first));
        },
        [&](std::size_t o, std::size_t k, std::size_t row) {
            const T* in = x + row * m;
            T* __restrict b = best + o * m;
            T* __restrict a = arg + o * m;
            const T tap = T(k);
            for (std::size_t j = 0; j < m; ++j) {
                const bool take = in[j] > b[j] || in[j] != in[j];
                b[j] = take ? in[j] : b[j];
                a[j] = take ? tap : a[j];
            }
        });
}

// Where a pool's backward puts dx. When the windows tile the image exactly (stride =
// kernel, no padding, sides divisible: the usual pool 2 on even sizes), every pixel lies in
// exactly one window, so a first gradient is written in one pass; otherwise it is zeroed,
// then added to.
template <class T>
struct PoolGradient {
    T* dx;
    bool assign;
    template <class F>
    void put(std::size_t row, std::size_t m, F&& value) const {
        T* __restrict out = dx + row * m;
        if (assign) {
            for (std::size_t j = 0; j < m; ++j) out[j] = value(j);
        } else {
            for (std::size_t j = 0; j < m; ++j) out[j] += value(j);
        }
    }
};

template <class T>
PoolGradient<T> pool_gradient(Tape<T>& tape, const Node<T>& y, const WindowGeometry& g) {
    const bool tiles = g.padding == 0 && g.stride == g.kernel_h && g.stride == g.kernel_w &&
                       g.height % g.stride == 0 && g.width % g.stride == 0;
    GradientSink<T> sink = tape.grad_of(y, 0);
    if (sink.overwrite && !tiles) std::fill(sink.grad.begin(), sink.grad.end(), T(0));
    return {sink.grad.data(), sink.overwrite && tiles};
}

template <class T>
void max_pool_backward(Tape<T>& tape, Node<T>& y) {
    const WindowGeometry g = ops::load(y);
    const std::size_t m = y.value.shape()[1];
    const T* dy = y.grad.data();
    const T* arg = y.saved().data();
    const PoolGradient<T> dx = pool_gradient(tape, y, g);
    visit_windows(
        g, [](std::size_t, std::size_t) {},
        [&](std::size_t o, std::size_t k, std::size_t row) {
            const T* d = dy + o * m;
            const T* a = arg + o * m;
            const T tap = T(k);
            dx.put(row, m, [&](std::size_t j) { return a[j] == tap ? d[j] : T(0); });
        });
}

// PyTorch's count_include_pad=True: every window divides by kh*kw, padding or not.
template <class T>
void avg_pool_forward(Tape<T>& tape, Node<T>& y) {
    const WindowGeometry g = ops::load(y);
    const T* x = tape.input(y, 0).data();
    const std::size_t m = y.value.shape()[1];
    T* sum = y.value.data();
    visit_windows(
        g, [&](std::size_t o, std::size_t) { std::fill_n(sum + o * m, m, T(0)); },
        [&](std::size_t o, std::size_t, std::size_t row) {
            const T* in = x + row * m;
            T* __restrict s = sum + o * m;
            for (std::size_t j = 0; j < m; ++j) s[j] += in[j];
        });
    const T count = T(g.taps());
    for (T& v : y.value) v /= count;
}

template <class T>
void avg_pool_backward(Tape<T>& tape, Node<T>& y) {
    const WindowGeometry g = ops::load(y);
    const std::size_t m = y.value.shape()[1];
    const T* dy = y.grad.data();
    const T count = T(g.taps());
    const PoolGradient<T> dx = pool_gradient(tape, y, g);
    visit_windows(
        g, [](std::size_t, std::size_t) {},
        [&](std::size_t o, std::size_t, std::size_t row) {
            const T* d = dy + o * m;
            dx.put(row, m, [&](std::size_t j) { return d[j] / count; });
        });
}

template <class T>
Var<T> pool(const char* op, const Var<T>& x, ImageShape image, Window window, ForwardFn<T> forward, BackwardFn<T> backward) {
    const ops::HeldTape<T> held(op, {x});
    Tape<T>& tape = held.tape();
    const WindowGeometry g = ops::window_geometry(op, x, image, window, true);
    // max_pool2d keeps tap indices as T values: exact up to 2^24 in float.
    if (g.taps() > (std::size_t(1) << std::numeric_limits<T>::digits))
        ops::fail(op, "a " + std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) +
                          " window has more taps than this type counts exactly (" +
                          std::to_string(std::size_t(1) << std::numeric_limits<T>::digits) + ")");
    return ops::record_library_op(tape, op, {x}, {g.channels * g.positions(), x.cols()}, forward, backward,
                          [&](Node<T>& y) { ops::store(y, g); });
}

Window square(std::size_t kernel) { return {kernel, kernel, kernel, 0}; }

}  // namespace

template <class T>
Var<T> max_pool2d(const Var<T>& x, ImageShape image, Window window) {
    return pool<T>("max_pool2d", x, image, window, max_pool_forward<T>, max_pool_backward<T>);
}
template <class T>
Var<T> max_pool2d(const Var<T>& x, ImageShape image, std::size_t kernel) {
    return max_pool2d(x, image, square(kernel));
}
template <class T>
Var<T> avg_pool2d(const Var<T>& x, ImageShape image, Window window) {
    return pool<T>("avg_pool2d", x, image, window, avg_pool_forward<T>, avg_pool_backward<T>);
}
template <class T>
Var<T> avg_pool2d(const Var<T>& x, ImageShape image, std::size_t kernel) {
    return avg_pool2d(x, image, square(kernel));
}

#define TAPEGRAD_INSTANTIATE(T)                                                  \
    template Var<T> max_pool2d<T>(const Var<T>&, ImageShape, Window);                  \
    template Var<T> max_pool2d<T>(const Var<T>&, ImageShape, std::size_t);             \
    template Var<T> avg_pool2d<T>(const Var<T>&, ImageShape, Window);                  \
    template Var<T> avg_pool2d<T>(const Var<T>&, ImageShape, std::size_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
