// conv2d, max_pool2d and avg_pool2d: every input checked by central differences in double
// over kernel sizes, strides, paddings, channel counts and image sizes (1x1 images
// included, m = 1 and m > 1), and values and gradients against the definition written as
// plain loops, on a batch large enough that conv2d works in several bands.

#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <numeric>

#include "autodiff/autodiff.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;

namespace {

struct Case {
    ImageShape image;
    Window window;
    std::size_t out_channels;  // conv2d only
};

// 1x1 images (with and without padding), kernels as large as the padded image, strides
// that skip pixels, non-square kernels and odd, non-square images.
const std::vector<Case> conv_cases = {
    {{1, 1, 1}, {1, 1, 1, 0}, 1}, {{1, 1, 1}, {3, 3, 1, 1}, 2}, {{2, 1, 1}, {1, 1, 1, 1}, 2},
    {{2, 5, 7}, {3, 3, 1, 0}, 3}, {{3, 6, 5}, {2, 3, 2, 1}, 2}, {{1, 7, 7}, {3, 3, 3, 1}, 4},
    {{2, 4, 4}, {4, 4, 1, 0}, 1}, {{1, 9, 8}, {5, 2, 2, 2}, 2}, {{2, 3, 3}, {1, 1, 2, 0}, 3},
    {{1, 5, 3}, {1, 3, 1, 1}, 2},
};

// Pools need padding <= kernel / 2.
const std::vector<Case> pool_cases = {
    {{1, 1, 1}, {1, 1, 1, 0}, 0}, {{2, 4, 4}, {2, 2, 2, 0}, 0}, {{3, 5, 7}, {3, 3, 2, 1}, 0},
    {{1, 6, 5}, {2, 3, 1, 1}, 0}, {{2, 7, 7}, {3, 3, 3, 0}, 0}, {{1, 3, 3}, {3, 3, 1, 1}, 0},
    {{1, 2, 2}, {2, 2, 1, 1}, 0}, {{2, 1, 1}, {1, 1, 2, 0}, 0}, {{1, 5, 4}, {4, 2, 3, 1}, 0},
};

std::string describe(const Case& c, std::size_t m) {
    return "image " + std::to_string(c.image.channels) + "x" + std::to_string(c.image.height) + "x" +
           std::to_string(c.image.width) + ", kernel " + std::to_string(c.window.height) + "x" +
           std::to_string(c.window.width) + ", stride " + std::to_string(c.window.stride) + ", padding " +
           std::to_string(c.window.padding) + ", m " + std::to_string(m);
}

void require_gradcheck(const TapeFunction<double>& f, const std::vector<Matrix<double>>& inputs) {
    const GradcheckResult result = gradcheck<double>(f, inputs);
    INFO(result.summary());
    REQUIRE(result.passed);
    REQUIRE(result.worst_error <= 1e-6);
}

// Distinct values at least 1e-2 apart, so no finite-difference step reorders a window.
Matrix<double> distinct_values(std::mt19937_64& rng, Shape s) {
    Matrix<double> x({s.rows, s.cols});
    std::iota(x.begin(), x.end(), 0.0);
    std::shuffle(x.begin(), x.end(), rng);
    for (double& v : x) v = (v - double(x.size()) / 2) * 0.01;
    return x;
}

// ---- the definitions, as loops over (image, channel, row, column) ----

bool inside(ImageShape im, long i, long j) { return i >= 0 && j >= 0 && i < long(im.height) && j < long(im.width); }

// Calls f(output row, channel, e, i, j, tap) for every in-image tap (i, j) of every window.
template <class F>
void each_tap(ImageShape im, Window w, std::size_t m, F&& f) {
    const std::size_t oh_n = (im.height + 2 * w.padding - w.height) / w.stride + 1;
    const std::size_t ow_n = (im.width + 2 * w.padding - w.width) / w.stride + 1;
    for (std::size_t c = 0; c < im.channels; ++c)
        for (std::size_t oh = 0; oh < oh_n; ++oh)
            for (std::size_t ow = 0; ow < ow_n; ++ow)
                for (std::size_t e = 0; e < m; ++e)
                    for (std::size_t ki = 0; ki < w.height; ++ki)
                        for (std::size_t kj = 0; kj < w.width; ++kj) {
                            const long i = long(oh * w.stride + ki) - long(w.padding);
                            const long j = long(ow * w.stride + kj) - long(w.padding);
                            if (inside(im, i, j)) f((c * oh_n + oh) * ow_n + ow, c, e, i, j, ki * w.width + kj);
                        }
}

struct ConvReference {
    Matrix<double> y, dx, dW, db;
};

// y = conv2d(x, W, b) and, for the seed dy, the three gradients, straight from the sums.
ConvReference conv_reference(const Matrix<double>& x, ImageShape im, const Matrix<double>& W, const Matrix<double>& b,
                             Window w, const Matrix<double>& dy) {
    const std::size_t m = x.shape()[1], C_out = W.shape()[0], taps = w.height * w.width;
    const ImageShape out = conv2d_output_shape(im, C_out, w);
    const std::size_t P = out.height * out.width;
    ConvReference r{Matrix<double>({C_out * P, m}), xt::zeros<double>(x.shape()), xt::zeros<double>(W.shape()),
                    xt::zeros<double>(b.shape())};
    for (std::size_t o = 0; o < C_out; ++o)
        for (std::size_t p = 0; p < P; ++p)
            for (std::size_t e = 0; e < m; ++e) {
                r.y(o * P + p, e) = b(o, 0);
                r.db(o, 0) += dy(o * P + p, e);
            }
    // Over channel 0's windows; the channel of each tap is the filter's input channel c.
    each_tap({1, im.height, im.width}, w, m, [&](std::size_t p, std::size_t, std::size_t e, long i, long j, std::size_t k) {
        for (std::size_t c = 0; c < im.channels; ++c) {
            const std::size_t row = (c * im.height + std::size_t(i)) * im.width + std::size_t(j);
            for (std::size_t o = 0; o < C_out; ++o) {
                r.y(o * P + p, e) += W(o, c * taps + k) * x(row, e);
                r.dW(o, c * taps + k) += dy(o * P + p, e) * x(row, e);
                r.dx(row, e) += W(o, c * taps + k) * dy(o * P + p, e);
            }
        }
    });
    return r;
}

void require_close(const Matrix<double>& got, const Matrix<double>& want, double tolerance = 1e-12) {
    REQUIRE(shape_of(got) == shape_of(want));
    for (std::size_t k = 0; k < got.size(); ++k)
        REQUIRE_THAT(got.data()[k], Catch::Matchers::WithinAbs(want.data()[k], tolerance * (1 + std::abs(want.data()[k]))));
}

}  // namespace

TEST_CASE("conv2d matches finite differences for x, W and b over the geometry sweep", "[gradcheck][conv]") {
    std::mt19937_64 rng(21);
    for (const Case& c : conv_cases)
        for (std::size_t m : {1, 3}) {
            INFO(describe(c, m));
            const Matrix<double> x = random_matrix(rng, {c.image.size(), m});
            const Matrix<double> W = random_matrix(rng, {c.out_channels, c.image.channels * c.window.height * c.window.width});
            const Matrix<double> b = random_matrix(rng, {c.out_channels, 1});
            require_gradcheck(
                [&](Tape<double>&, const std::vector<Var<double>>& v) { return conv2d(v[0], c.image, v[1], v[2], c.window); },
                {x, W, b});
            require_gradcheck(
                [&](Tape<double>&, const std::vector<Var<double>>& v) { return conv2d(v[0], c.image, v[1], c.window); },
                {x, W});
        }
}

TEST_CASE("max_pool2d and avg_pool2d match finite differences over the geometry sweep", "[gradcheck][conv]") {
    std::mt19937_64 rng(22);
    for (const Case& c : pool_cases)
        for (std::size_t m : {1, 4}) {
            INFO(describe(c, m));
            const Matrix<double> x = distinct_values(rng, {c.image.size(), m});
            require_gradcheck(
                [&](Tape<double>&, const std::vector<Var<double>>& v) { return max_pool2d(v[0], c.image, c.window); }, {x});
            require_gradcheck(
                [&](Tape<double>&, const std::vector<Var<double>>& v) { return avg_pool2d(v[0], c.image, c.window); }, {x});
        }
}

TEST_CASE("conv2d equals its definition, values and gradients, also when it works in several bands", "[conv]") {
    std::mt19937_64 rng(23);
    // The last case's im2col (4 channels x 9 taps x 32 columns x 80 examples, doubles) is
    // several MiB, so the op builds it in bands and rebuilds them in the backward.
    const std::vector<std::pair<Case, std::size_t>> cases = {
        {{{2, 5, 7}, {3, 3, 1, 1}, 3}, 5}, {{{3, 8, 6}, {3, 2, 2, 1}, 4}, 2}, {{{4, 32, 32}, {3, 3, 1, 1}, 3}, 80}};
    for (const auto& [c, m] : cases) {
        INFO(describe(c, m));
        const Matrix<double> x = random_matrix(rng, {c.image.size(), m});
        const Matrix<double> W = random_matrix(rng, {c.out_channels, c.image.channels * c.window.height * c.window.width});
        const Matrix<double> b = random_matrix(rng, {c.out_channels, 1});
        Tape<double> tape;
        Var<double> vx = tape.leaf(x), vW = tape.leaf(W), vb = tape.leaf(b);
        Var<double> y = conv2d(vx, c.image, vW, vb, c.window);
        const Matrix<double> dy = random_matrix(rng, y.shape());
        tape.backward(y, dy);
        const ConvReference want = conv_reference(x, c.image, W, b, c.window, dy);
        require_close(y.value(), want.y);
        require_close(vx.grad(), want.dx);
        require_close(vW.grad(), want.dW);
        require_close(vb.grad(), want.db);
    }
}

TEST_CASE("max_pool2d and avg_pool2d equal their definitions, ties and padding included", "[conv]") {
    const ImageShape im{2, 5, 4};
    const Window w{3, 2, 2, 1};
    const std::size_t m = 3;
    std::mt19937_64 rng(24);
    Matrix<double> x = random_matrix(rng, {im.size(), m});
    for (std::size_t k = 0; k < x.size(); k += 3) x.data()[k] = 0.5;  // ties: the first tap wins
    const ImageShape out = pool2d_output_shape(im, w);
    const std::size_t rows = out.size();
    Matrix<double> max_y = Matrix<double>({rows, m}), max_dx = xt::zeros<double>(x.shape());
    Matrix<double> avg_y = xt::zeros<double>({rows, m}), avg_dx = xt::zeros<double>(x.shape());
    max_y.fill(-std::numeric_limits<double>::infinity());
    std::vector<std::size_t> winner(rows * m);
    const Matrix<double> dy = random_matrix(rng, {rows, m});
    each_tap(im, w, m, [&](std::size_t o, std::size_t c, std::size_t e, long i, long j, std::size_t) {
        const std::size_t row = (c * im.height + std::size_t(i)) * im.width + std::size_t(j);
        if (x(row, e) > max_y(o, e)) {
            max_y(o, e) = x(row, e);
            winner[o * m + e] = row;
        }
        avg_y(o, e) += x(row, e) / double(w.height * w.width);
        avg_dx(row, e) += dy(o, e) / double(w.height * w.width);
    });
    for (std::size_t o = 0; o < rows; ++o)
        for (std::size_t e = 0; e < m; ++e) max_dx(winner[o * m + e], e) += dy(o, e);

    Tape<double> tape;
    Var<double> vx = tape.leaf(x);
    Var<double> y = max_pool2d(vx, im, w);
    tape.backward(y, dy);
    require_close(y.value(), max_y);
    require_close(vx.grad(), max_dx);
    tape.reset();
    vx = tape.leaf(x);
    y = avg_pool2d(vx, im, w);
    tape.backward(y, dy);
    require_close(y.value(), avg_y);
    require_close(vx.grad(), avg_dx);
}

TEST_CASE("max_pool2d lets a NaN win its window, as PyTorch does", "[conv]") {
    Tape<double> tape;
    Matrix<double> x = {{1}, {std::numeric_limits<double>::quiet_NaN()}, {3}, {2}};
    Var<double> y = max_pool2d(tape.leaf(x), {1, 2, 2}, 2);
    REQUIRE(std::isnan(y.value()(0, 0)));
}

TEST_CASE("output shapes follow PyTorch's formula, and the pools' short form strides by the kernel", "[conv]") {
    const ImageShape a = conv2d_output_shape({1, 28, 28}, 32, {3, 3, 1, 1});
    CHECK((a.channels == 32 && a.height == 28 && a.width == 28));
    const ImageShape b = conv2d_output_shape({3, 9, 8}, 5, {4, 3, 2, 1});
    CHECK((b.channels == 5 && b.height == 4 && b.width == 4));
    const ImageShape c = pool2d_output_shape({32, 28, 28}, {2, 2, 2, 0});
    CHECK((c.channels == 32 && c.height == 14 && c.width == 14));
    Tape<float> tape;
    Var<float> x = tape.constant(Matrix<float>(xt::ones<float>({2 * 7 * 7, 3})));
    CHECK(max_pool2d(x, {2, 7, 7}, 2).shape() == Shape{2 * 3 * 3, 3});
    CHECK(avg_pool2d(x, {2, 7, 7}, 3).shape() == Shape{2 * 2 * 2, 3});
}

TEST_CASE("conv and pool gradients add to an input's other uses, whichever runs first", "[gradcheck][conv]") {
    std::mt19937_64 rng(25);
    const ImageShape im{2, 4, 6};
    const Matrix<double> x = distinct_values(rng, {im.size(), 3});
    const Matrix<double> W = random_matrix(rng, {3, 2 * 9}), b = random_matrix(rng, {3, 1});
    using Pool = Var<double> (*)(const Var<double>&, ImageShape, Window);
    for (Pool pool : {Pool(max_pool2d<double>), Pool(avg_pool2d<double>)})
        for (Window w : {Window{2, 2, 2, 0}, Window{3, 2, 1, 1}}) {  // tiling the image, overlapping
            INFO("window " << w.height << "x" << w.width << ", stride " << w.stride);
            for (bool pool_last : {true, false}) {  // recorded last, its backward runs first and writes
                INFO("pool recorded " << (pool_last ? "last" : "first"));
                require_gradcheck(
                    [&](Tape<double>&, const std::vector<Var<double>>& v) {
                        Var<double> a = pool_last ? sum(v[0] * v[0]) : sum(pool(v[0], im, w));
                        Var<double> b = pool_last ? sum(pool(v[0], im, w)) : sum(v[0] * v[0]);
                        return a + b;
                    },
                    {x});
            }
        }
    require_gradcheck(
        [&](Tape<double>&, const std::vector<Var<double>>& v) {
            Var<double> squares = sum(v[0] * v[0]) + sum(v[1] * v[1]);
            return squares + sum(conv2d(v[0], im, v[1], v[2], {3, 3, 1, 1}));
        },
        {x, W, b});
}
