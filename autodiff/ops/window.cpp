// Checking a sliding window against an image, once, when conv2d or a pool is recorded.

#include "autodiff/ops/window.hpp"

#include <limits>

namespace autodiff::ops {

namespace {

std::string image_text(ImageShape image) {
    return std::to_string(image.channels) + "x" + std::to_string(image.height) + "x" + std::to_string(image.width);
}

std::string kernel_text(Window w) { return std::to_string(w.height) + "x" + std::to_string(w.width); }

}  // namespace

WindowGeometry window_geometry(const char* op, ImageShape image, Window w, bool pool) {
    if (image.channels == 0 || image.height == 0 || image.width == 0)
        fail(op, "the image is " + image_text(image) + " (C x H x W): every size must be at least 1");
    if (w.height == 0 || w.width == 0) fail(op, "kernel " + kernel_text(w) + ": each side must be at least 1");
    if (w.stride == 0) fail(op, "stride 0: the step between windows must be at least 1");
    // The geometry is kept in 32-bit params; an image this large would not fit in memory anyway.
    constexpr std::size_t limit = std::numeric_limits<std::uint32_t>::max() / 4;
    for (std::size_t v : {image.channels, image.height, image.width, w.height, w.width, w.stride, w.padding})
        if (v > limit)
            fail(op, "image " + image_text(image) + ", kernel " + kernel_text(w) + ", stride " +
                         std::to_string(w.stride) + ", padding " + std::to_string(w.padding) + ": sizes above " +
                         std::to_string(limit) + " are not supported");
    if (pool && (2 * w.padding > w.height || 2 * w.padding > w.width))
        fail(op, "padding " + std::to_string(w.padding) + " with a " + kernel_text(w) +
                     " kernel: padding must be at most half the kernel on each side (PyTorch's rule)");
    const std::size_t padded_h = image.height + 2 * w.padding, padded_w = image.width + 2 * w.padding;
    if (w.height > padded_h || w.width > padded_w)
        fail(op, "the " + kernel_text(w) + " kernel is larger than the padded image " + std::to_string(padded_h) + "x" +
                     std::to_string(padded_w) + " (image " + image_text(image) + " (C x H x W), padding " +
                     std::to_string(w.padding) + " on each side)");
    const WindowGeometry g{image.channels, image.height, image.width, w.height, w.width, w.stride, w.padding,
                           (padded_h - w.height) / w.stride + 1, (padded_w - w.width) / w.stride + 1};
    // Each size is bounded above, but their products are not: the image's, the output's and
    // the taps' element counts must not wrap (every buffer and index is sized from them).
    auto elements = [](std::size_t a, std::size_t b, std::size_t c) {
        std::size_t ab = 0, abc = 0;
        return multiply_fits(a, b, ab) && multiply_fits(ab, c, abc);
    };
    if (!elements(g.channels, g.height, g.width) || !elements(g.channels, g.out_h, g.out_w) ||
        !elements(g.channels, g.kernel_h, g.kernel_w))
        fail(op, "image " + image_text(image) + " (C x H x W), kernel " + kernel_text(w) + ", stride " +
                     std::to_string(w.stride) + ", padding " + std::to_string(w.padding) +
                     ": the image, its output or its taps have more elements than memory can address");
    return g;
}

}  // namespace autodiff::ops

namespace autodiff {

ImageShape conv2d_output_shape(ImageShape in, std::size_t out_channels, Window window) {
    if (out_channels == 0) ops::fail("conv2d", "0 output channels: W must have at least one row");
    const ops::WindowGeometry g = ops::window_geometry("conv2d", in, window, false);
    return {out_channels, g.out_h, g.out_w};
}

ImageShape pool2d_output_shape(ImageShape in, Window window) {
    const ops::WindowGeometry g = ops::window_geometry("pool2d", in, window, true);
    return {in.channels, g.out_h, g.out_w};
}

}  // namespace autodiff
