#pragma once
// The sliding-window geometry conv2d and the pools share: checked once when the op is
// recorded, kept in the entry's params (so a replay needs nothing else), and the one
// piece of index arithmetic every loop uses: which output positions a kernel tap reaches.

#include <algorithm>
#include <cstdint>
#include <string>

#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff::ops {

// Output positions o in [begin, end) along one axis for which the input index
// o*stride + tap - padding lies inside [0, size).
struct Span {
    std::size_t begin = 0, end = 0;
};

struct WindowGeometry {
    std::size_t channels, height, width;  // the input image
    std::size_t kernel_h, kernel_w, stride, padding;
    std::size_t out_h, out_w;

    std::size_t positions() const { return out_h * out_w; }
    std::size_t taps() const { return kernel_h * kernel_w; }
    std::size_t in_rows() const { return channels * height * width; }

    // The output rows (columns) whose window tap ki (kj) lands inside the image.
    Span valid_rows(std::size_t ki) const { return span(ki, height, out_h); }
    Span valid_cols(std::size_t kj) const { return span(kj, width, out_w); }
    // The taps ki (kj) of output row oh's (column ow's) window that land inside the image.
    Span taps_in_rows(std::size_t oh) const { return taps(oh, kernel_h, height); }
    Span taps_in_cols(std::size_t ow) const { return taps(ow, kernel_w, width); }
    // The input pixel tap (ki, kj) of output position (oh, ow) reads; only for valid spans.
    std::size_t input_row(std::size_t c, std::size_t oh, std::size_t ow, std::size_t ki, std::size_t kj) const {
        return (c * height + (oh * stride + ki - padding)) * width + (ow * stride + kj - padding);
    }

private:
    Span taps(std::size_t o, std::size_t kernel, std::size_t size) const {
        // 0 <= o*stride + k - padding < size
        const std::size_t start = o * stride;
        const std::size_t low = padding > start ? padding - start : 0;
        const std::size_t high = size + padding > start ? std::min(kernel, size + padding - start) : 0;
        return {low, std::max(low, high)};
    }
    Span span(std::size_t tap, std::size_t size, std::size_t out) const {
        // o*stride + tap >= padding  and  o*stride + tap < size + padding
        const std::size_t low = tap >= padding ? 0 : (padding - tap + stride - 1) / stride;
        const std::size_t high = size + padding > tap ? (size + padding - tap - 1) / stride + 1 : 0;
        return {low, std::max(low, std::min(high, out))};
    }
};

// Checks the window against the image and x's rows, with messages naming op and the
// convention. pool: the pools' extra rule (padding at most half the kernel).
WindowGeometry window_geometry(const char* op, ImageShape image, Window window, bool pool);

template <class T>
WindowGeometry window_geometry(const char* op, const Var<T>& x, ImageShape image, Window window, bool pool) {
    const WindowGeometry g = window_geometry(op, image, window, pool);
    if (x.rows() != image.size())
        fail(op, "x is " + to_string(x.shape()) + " but the image is " + std::to_string(image.channels) + "x" +
                     std::to_string(image.height) + "x" + std::to_string(image.width) + ", so x must have C*H*W = " +
                     std::to_string(image.size()) + " rows (images are columns, features in C x H x W order)");
    return g;
}

// The geometry lives in the entry's params, so the forward and backward need nothing else.
template <class T>
void store(Node<T>& n, const WindowGeometry& g) {
    n.params() = {std::uint32_t(g.channels), std::uint32_t(g.height), std::uint32_t(g.width), std::uint32_t(g.kernel_h),
                std::uint32_t(g.kernel_w), std::uint32_t(g.stride), std::uint32_t(g.padding), 0};
}

template <class T>
WindowGeometry load(const Node<T>& n) {
    const auto& p = n.params();
    WindowGeometry g{p[0], p[1], p[2], p[3], p[4], p[5], p[6], 0, 0};
    g.out_h = (g.height + 2 * g.padding - g.kernel_h) / g.stride + 1;
    g.out_w = (g.width + 2 * g.padding - g.kernel_w) / g.stride + 1;
    return g;
}

// The gradient of `input`, zeroed if this is its first contribution. The window ops
// scatter-add into it, and every contribution is then an addition, so their order is
// free even when two inputs are one node.
template <class T>
GradientSink<T> zeroed_sink(Tape<T>& tape, const Node<T>& y, int input) {
    GradientSink<T> sink = tape.grad_of(y, input);
    if (sink.overwrite) std::fill(sink.grad.begin(), sink.grad.end(), T(0));
    return sink;
}

}  // namespace autodiff::ops
