// Random op sequences on one tape: random shapes (often mismatched), values drawn from
// NaN, +-Inf, huge, denormal, signed zeros and ordinary numbers. Every op either throws
// autodiff::Error when an independent rule says it must (shape mismatch, log of a negative,
// division by zero, ...), or returns a value matching an independent reference computed
// here with plain loops. Backward never crashes, and where every value is well-conditioned
// the gradients pass autodiff::gradcheck (central differences).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "autodiff/autodiff.hpp"
#include "fuzz_support.hpp"
#include "nn/non_finite.hpp"
#include "nn/optimizers.hpp"

using namespace autodiff;
using M = Matrix<double>;

namespace {

enum Op : std::uint8_t {
    op_matmul, op_linear, op_transpose, op_add, op_sub, op_mul, op_div, op_neg, op_scale, op_exp, op_log,
    op_relu, op_sigmoid, op_tanh, op_softmax, op_log_softmax, op_sce_matrix, op_sce_labels, op_sum,
    op_sum_axis, op_mean, op_mean_axis, op_mse,
    // The ops added since (ops/elementwise_math.cpp, losses.cpp, normalization.cpp): their
    // values are checked against PyTorch's fixtures in the test suite; here they must name
    // themselves when they refuse, never crash, and pass gradcheck where the values are tame.
    op_square, op_sqrt, op_abs, op_log1p, op_leaky_relu, op_elu, op_gelu, op_softplus, op_silu, op_maximum,
    op_minimum, op_max_axis, op_huber, op_bce_logits, op_layer_norm,
    // The structure, normalisation and convolution ops: each reads its parameters (a range,
    // a geometry, ids) from the instruction's knobs.
    op_pow, op_clamp, op_where, op_concat, op_slice, op_gather, op_reshape, op_nll, op_batch_norm, op_dropout,
    op_conv2d, op_max_pool2d, op_avg_pool2d, op_scalar, op_softmax_axis,
    // The overloads and parameters the ops above leave at their defaults: the fused linear
    // (checked against linear then the activation), max over everything, the normalisations
    // with gain and bias and an eps, cross-entropy with label smoothing or targets as a
    // handle, the losses with a target matrix, the activations' slope, alpha, beta and
    // threshold, and where with a mask handle (refused when it needs a gradient).
    op_linear_act, op_max_all, op_norm_affine, op_sce_forms, op_loss_matrix, op_unary_param, op_where_var, op_count
};

const char* const op_names[op_count] = {
    "matmul", "linear", "transpose", "add", "sub", "mul", "div", "neg", "scale", "exp", "log", "relu", "sigmoid",
    "tanh", "softmax", "log_softmax", "softmax_cross_entropy", "softmax_cross_entropy", "sum", "sum", "mean",
    "mean", "mse", "square", "sqrt", "abs", "log1p", "leaky_relu", "elu", "gelu", "softplus", "silu", "maximum",
    "minimum", "max", "huber", "binary_cross_entropy_with_logits", "layer_norm", "pow", "clamp", "where", "concat",
    "slice", "gather", "reshape", "nll_loss", "batch_norm", "dropout", "conv2d", "max_pool2d", "avg_pool2d",
    nullptr /* op_scalar: named by the form it takes */, "softmax", "linear", "max", nullptr /* op_norm_affine */,
    "softmax_cross_entropy", nullptr /* op_loss_matrix */, nullptr /* op_unary_param */, "where"};

// The ops from op_pow on read six knob bytes (and gather and nll_loss a list of ids).
bool has_knobs(Op op) { return op >= op_pow; }

// op_scalar's four forms, by knob 0; likewise the ops of op_norm_affine, op_loss_matrix, op_unary_param.
const char* const scalar_forms[4] = {"add_scalar", "rsub_scalar", "div_scalar", "rdiv_scalar"};
const char* const norm_forms[2] = {"layer_norm", "batch_norm"};
const char* const loss_forms[3] = {"binary_cross_entropy_with_logits", "huber", "mse"};
const char* const unary_forms[3] = {"leaky_relu", "elu", "softplus"};
const char* name_of(const struct Instr& ins);

double special(std::uint8_t b) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    switch (b) {
        case 0: return std::numeric_limits<double>::quiet_NaN();
        case 1: return inf;
        case 2: return -inf;
        case 3: return 1e300;
        case 4: return -1e300;
        case 5: return std::numeric_limits<double>::denorm_min();
        case 6: return -1e-310;
        case 7: return 0.0;
        case 8: return -0.0;
        case 9: return std::numeric_limits<double>::max();
        default: return (b - 10) / 245.0 * 8.0 - 4.0;  // [-4, 4]
    }
}

M random_matrix(FuzzedDataProvider& in, std::size_t rows, std::size_t cols) {
    M m({rows, cols});
    for (auto& v : m) v = special(in.ConsumeIntegral<std::uint8_t>());
    return m;
}

std::size_t dim(FuzzedDataProvider& in) { return in.ConsumeIntegralInRange<std::size_t>(1, 4); }

struct Instr {
    Op op;
    std::size_t a = 0, b = 0, c = 0;  // operands: indices into the pool of results
    int axis = 0;
    double factor = 1;
    M Y;          // targets of op_sce_matrix
    Labels labels;  // targets of op_sce_labels, ids of op_gather and op_nll
    std::uint8_t knobs[6] = {};  // the newer ops' parameters
    bool ok = false;  // recorded without throwing in the first run
};

const char* name_of(const Instr& ins) {
    if (ins.op == op_scalar) return scalar_forms[ins.knobs[0] % 4];
    if (ins.op == op_softmax_axis) return ins.knobs[0] % 2 ? "softmax" : "log_softmax";
    if (ins.op == op_norm_affine) return norm_forms[ins.knobs[0] % 2];
    if (ins.op == op_loss_matrix) return loss_forms[ins.knobs[0] % 3];
    if (ins.op == op_unary_param) return unary_forms[ins.knobs[0] % 3];
    return op_names[ins.op];
}

// A divisor of n picked by a knob (1 when n is 0).
std::size_t divisor_of(std::size_t n, std::uint8_t knob) {
    std::vector<std::size_t> ds;
    for (std::size_t d = 1; d <= n; ++d)
        if (n % d == 0) ds.push_back(d);
    return ds.empty() ? 1 : ds[knob % ds.size()];
}

// The images a matrix of `rows` rows holds for conv2d and the pools: usually a shape that
// fits (C * H * W == rows, by knobs 0 and 1), sometimes one that does not (knob 0's top bit).
ImageShape image_of(const Instr& ins, std::size_t rows) {
    if (ins.knobs[0] & 0x80) return {std::size_t(ins.knobs[0] % 3 + 1), std::size_t(ins.knobs[1] % 4 + 1), 2};
    const std::size_t channels = divisor_of(rows, ins.knobs[0]);
    const std::size_t height = divisor_of(rows / channels, ins.knobs[1]);
    return {channels, height, rows / channels / height};
}

// A window from knobs 2..5: kernel 1..3 x 1..3, stride 1..2 (0, refused, at 1/64), padding 0..1.
Window window_of(const Instr& ins) {
    return {std::size_t(ins.knobs[2] % 3 + 1), std::size_t(ins.knobs[3] % 3 + 1),
            std::size_t(ins.knobs[4] % 64 == 0 ? 0 : ins.knobs[4] % 2 + 1), std::size_t(ins.knobs[5] % 2)};
}

// A scalar parameter from knob 1: usually ordinary, (0, 4], sometimes the instruction's
// factor (NaN, +-Inf, 0, huge, negative...), which the op may refuse.
double parameter_of(const Instr& ins) { return ins.knobs[1] % 16 == 0 ? ins.factor : (ins.knobs[1] + 1) / 64.0; }

// Class labels, one per column of `logits`, from the knobs: now and then one equal to the
// number of rows, out of range.
Labels labels_of(const Instr& ins, const M& logits) {
    Labels labels(logits.shape(1));
    for (std::size_t j = 0; j < labels.size(); ++j) labels[j] = ins.knobs[(j + 2) % 6] % (logits.shape(0) + 1);
    return labels;
}

// A target matrix for the losses that take one: of `like`'s shape, or (knob 3's top bit)
// of another; values from the knobs, NaN and Inf among them. Not an operand's value: a
// target is a constant, and gradcheck's replay must see the same one whatever the leaves.
M target_of(const Instr& ins, const M& like) {
    const bool other = ins.knobs[3] & 0x80;
    M t({other ? ins.knobs[3] % 3 + 1u : like.shape(0), other ? ins.knobs[4] % 3 + 1u : like.shape(1)});
    for (std::size_t k = 0; k < t.size(); ++k) t.data()[k] = special(std::uint8_t(ins.knobs[k % 6] + 31 * k));
    return t;
}

// softplus's threshold, in [-2, 6): below 20, where the jump to x is not negligible.
double threshold_of(const Instr& ins) { return ins.knobs[2] / 32.0 - 2; }

// where's selector, of the shape of its first operand, from knob bits.
M mask_of(const Instr& ins, const M& like) {
    M mask(like.shape());
    for (std::size_t k = 0; k < mask.size(); ++k) mask.data()[k] = (ins.knobs[k % 6] >> (k / 6 % 8)) & 1;
    return mask;
}

struct Program {
    std::vector<M> leaves;
    std::vector<Instr> code;
};

// ---- the independent reference ----

bool broadcasts(const M& a, const M& b) {
    for (int d = 0; d < 2; ++d)
        if (a.shape(d) != b.shape(d) && a.shape(d) != 1 && b.shape(d) != 1) return false;
    return true;
}

template <class F>
M broadcast(const M& a, const M& b, F f) {
    M r({std::max(a.shape(0), b.shape(0)), std::max(a.shape(1), b.shape(1))});
    for (std::size_t i = 0; i < r.shape(0); ++i)
        for (std::size_t j = 0; j < r.shape(1); ++j)
            r(i, j) = f(a(a.shape(0) == 1 ? 0 : i, a.shape(1) == 1 ? 0 : j),
                        b(b.shape(0) == 1 ? 0 : i, b.shape(1) == 1 ? 0 : j));
    return r;
}

template <class F>
M map(const M& a, F f) {
    M r(a.shape());
    for (std::size_t k = 0; k < a.size(); ++k) r.data()[k] = f(a.data()[k]);
    return r;
}

bool all_finite(const M& m) {
    for (double v : m)
        if (!std::isfinite(v)) return false;
    return true;
}

// A reference value with, per element, the size of what was summed: the tolerance of a
// result that depends on summation order. Empty `scale`: compare exactly (NaN matches NaN).
struct Reference {
    M value, scale;
    bool unchecked = false;  // an op without a reference here: it may refuse or not, its value is not compared
};

Reference matmul_ref(const M& a, const M& b) {
    Reference r{M({a.shape(0), b.shape(1)}), M({a.shape(0), b.shape(1)})};
    for (std::size_t i = 0; i < a.shape(0); ++i)
        for (std::size_t j = 0; j < b.shape(1); ++j) {
            double s = 0, size = 0;
            for (std::size_t k = 0; k < a.shape(1); ++k) {
                s += a(i, k) * b(k, j);
                size += std::abs(a(i, k) * b(k, j));
            }
            r.value(i, j) = s;
            r.scale(i, j) = size;
        }
    return r;
}

// W @ A + b, b a column.
Reference linear_ref(const M& W, const M& A, const M& b) {
    Reference r = matmul_ref(W, A);
    for (std::size_t i = 0; i < r.value.shape(0); ++i)
        for (std::size_t j = 0; j < r.value.shape(1); ++j) {
            r.value(i, j) += b(i, 0);
            r.scale(i, j) += std::abs(b(i, 0));
        }
    return r;
}

// log of the column sums of exp, stably; NaN if the column holds a NaN.
std::vector<double> log_norms(const M& z) {
    std::vector<double> out(z.shape(1));
    for (std::size_t j = 0; j < z.shape(1); ++j) {
        double mx = -std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < z.shape(0); ++i) mx = std::max(mx, z(i, j));
        double s = 0;
        for (std::size_t i = 0; i < z.shape(0); ++i) s += std::exp(z(i, j) - mx);
        out[j] = mx + std::log(s);
    }
    return out;
}

Reference log_softmax_ref(const M& z) {
    const auto norm = log_norms(z);
    Reference r{M(z.shape()), M(z.shape())};
    for (std::size_t i = 0; i < z.shape(0); ++i)
        for (std::size_t j = 0; j < z.shape(1); ++j) {
            r.value(i, j) = z(i, j) - norm[j];
            r.scale(i, j) = std::abs(z(i, j)) + std::abs(norm[j]);
        }
    return r;
}

Reference reduce_ref(const M& x, int axis, bool mean) {  // axis -1: everything
    const std::size_t rows = axis == 1 ? x.shape(0) : 1, cols = axis == 0 ? x.shape(1) : 1;
    Reference r{M({rows, cols}), M({rows, cols})};
    r.value.fill(0);
    r.scale.fill(0);
    for (std::size_t i = 0; i < x.shape(0); ++i)
        for (std::size_t j = 0; j < x.shape(1); ++j) {
            const std::size_t ri = axis == 1 ? i : 0, rj = axis == 0 ? j : 0;
            r.value(ri, rj) += x(i, j);
            r.scale(ri, rj) += std::abs(x(i, j));
        }
    const double n = double(x.size()) / double(r.value.size());
    if (mean) {
        r.value /= n;
        r.scale /= n;
    }
    return r;
}

Reference exact(M value) { return {std::move(value), M()}; }

bool matches(const M& actual, const Reference& ref) {
    if (actual.shape() != ref.value.shape()) return false;
    for (std::size_t k = 0; k < actual.size(); ++k) {
        const double a = actual.data()[k], r = ref.value.data()[k];
        if (std::isnan(a) && std::isnan(r)) continue;
        if (a == r) continue;
        if (ref.scale.size() == 0) {
            // Same formula, same libm: equal up to the last bit or two.
            if (std::isfinite(a) && std::isfinite(r) && std::abs(a - r) <= 1e-14 * std::max(1.0, std::abs(r))) continue;
            return false;
        }
        const double s = ref.scale.data()[k];
        if (!std::isfinite(s) || !std::isfinite(r)) continue;  // overflowed: the order of summation decides
        if (std::isfinite(a) && std::abs(a - r) <= 1e-12 * std::max(1.0, s)) continue;
        return false;
    }
    return true;
}

// ---- running a program ----

struct Run {
    bool checked = true;            // first run: compare with the reference
    bool well_conditioned = true;   // gradients may be checked by finite differences
};

// Returns the reference for instr on inputs a, b, c; `must_throw` says the op must refuse.
Reference reference(const Instr& ins, const M& a, const M& b, const M& c, bool& must_throw, Run& run) {
    must_throw = false;
    auto need = [&](bool ok) {
        if (!ok) must_throw = true;
        return ok;
    };
    auto cond = [&](bool ok) { run.well_conditioned = run.well_conditioned && ok; };
    auto away = [&](const M& x, double from, double gap) {
        for (double v : x) cond(std::abs(v - from) >= gap);
    };
    switch (ins.op) {
        case op_matmul:
            if (!need(a.shape(1) == b.shape(0))) return {};
            return matmul_ref(a, b);
        case op_linear:
            if (!need(a.shape(1) == b.shape(0) && c.shape(0) == a.shape(0) && c.shape(1) == 1)) return {};
            return linear_ref(a, b, c);
        case op_transpose: {
            M t({a.shape(1), a.shape(0)});
            for (std::size_t i = 0; i < a.shape(0); ++i)
                for (std::size_t j = 0; j < a.shape(1); ++j) t(j, i) = a(i, j);
            return exact(t);
        }
        case op_add: if (!need(broadcasts(a, b))) return {}; return exact(broadcast(a, b, [](double x, double y) { return x + y; }));
        case op_sub: if (!need(broadcasts(a, b))) return {}; return exact(broadcast(a, b, [](double x, double y) { return x - y; }));
        case op_mul: if (!need(broadcasts(a, b))) return {}; return exact(broadcast(a, b, [](double x, double y) { return x * y; }));
        case op_div: {
            bool zero = false;
            for (double v : b) zero = zero || v == 0;
            if (!need(broadcasts(a, b) && !zero)) return {};
            for (double v : b) cond(std::abs(v) >= 0.25);
            return exact(broadcast(a, b, [](double x, double y) { return x / y; }));
        }
        case op_neg: return exact(map(a, [](double x) { return -x; }));
        case op_scale: {
            const double s = ins.factor;
            if (!need(std::isfinite(s))) return {};
            return exact(map(a, [s](double x) { return s * x; }));
        }
        case op_exp: for (double v : a) cond(v <= 20); return exact(map(a, [](double x) { return std::exp(x); }));
        case op_log: {
            bool ok = true;
            for (double v : a) ok = ok && v >= 0;
            if (!need(ok)) return {};
            for (double v : a) cond(v >= 0.25);
            return exact(map(a, [](double x) { return std::log(x); }));
        }
        case op_relu: for (double v : a) cond(std::abs(v) >= 1e-3); return exact(map(a, [](double x) { return x < 0 ? 0.0 : x; }));
        case op_sigmoid: return {map(a, [](double x) { return 1 / (1 + std::exp(-x)); }), M(a.shape(), 1.0)};
        case op_tanh: return exact(map(a, [](double x) { return std::tanh(x); }));
        case op_softmax: {
            // exp(z - max) / sum, not exp(z - log-norm): max + log(sum) rounds at the scale of z.
            M p(a.shape());
            for (std::size_t j = 0; j < a.shape(1); ++j) {
                double mx = -std::numeric_limits<double>::infinity(), total = 0;
                for (std::size_t i = 0; i < a.shape(0); ++i) mx = std::max(mx, a(i, j));
                for (std::size_t i = 0; i < a.shape(0); ++i) total += std::exp(a(i, j) - mx);
                for (std::size_t i = 0; i < a.shape(0); ++i) p(i, j) = std::exp(a(i, j) - mx) / total;
            }
            return {p, M(a.shape(), 1.0)};
        }
        case op_log_softmax: return log_softmax_ref(a);
        case op_sce_matrix: {
            if (!need(ins.Y.shape() == a.shape() && all_finite(ins.Y))) return {};
            const Reference ls = log_softmax_ref(a);
            double loss = 0, size = 0;
            for (std::size_t k = 0; k < a.size(); ++k) {
                loss -= ins.Y.data()[k] * ls.value.data()[k];
                size += std::abs(ins.Y.data()[k]) * ls.scale.data()[k];
            }
            const double m = double(a.shape(1));
            return {M({1, 1}, loss / m), M({1, 1}, size / m)};
        }
        case op_sce_labels: {
            bool ok = ins.labels.size() == a.shape(1);
            for (std::size_t l : ins.labels) ok = ok && l < a.shape(0);
            if (!need(ok)) return {};
            const Reference ls = log_softmax_ref(a);
            double loss = 0, size = 0;
            for (std::size_t j = 0; j < a.shape(1); ++j) {
                loss -= ls.value(ins.labels[j], j);
                size += ls.scale(ins.labels[j], j);
            }
            const double m = double(a.shape(1));
            return {M({1, 1}, loss / m), M({1, 1}, size / m)};
        }
        case op_sum: return reduce_ref(a, -1, false);
        case op_mean: return reduce_ref(a, -1, true);
        case op_sum_axis: if (!need(ins.axis == 0 || ins.axis == 1)) return {}; return reduce_ref(a, ins.axis, false);
        case op_mean_axis: if (!need(ins.axis == 0 || ins.axis == 1)) return {}; return reduce_ref(a, ins.axis, true);
        case op_mse: {
            // A target that is not finite is refused, given as a handle too (the attack of 28f9e5f).
            if (!need(a.shape() == b.shape() && all_finite(b))) return {};
            M sq = broadcast(a, b, [](double x, double y) { return (x - y) * (x - y); });
            return reduce_ref(sq, -1, true);
        }
        case op_linear_act: {
            if (!need(a.shape(1) == b.shape(0) && c.shape(0) == a.shape(0) && c.shape(1) == 1)) return {};
            Reference r = linear_ref(a, b, c);
            if (ins.knobs[0] % 4 == 0) away(r.value, 0, 1e-3);  // relu's kink
            // Each activation moves a value by at most as much as its argument moved (slope
            // <= 1), so the tolerance of the sum carries over.
            switch (ins.knobs[0] % 4) {
                case 0: r.value = map(r.value, [](double x) { return x < 0 ? 0.0 : x; }); break;
                case 1: r.value = map(r.value, [](double x) { return 1 / (1 + std::exp(-x)); }); break;
                case 2: r.value = map(r.value, [](double x) { return std::tanh(x); }); break;
                default: break;
            }
            return r;
        }
        case op_max_all: {
            // The first maximum; a NaN counts as the largest.
            double best = a.data()[0];
            for (double v : a)
                if (v > best || (std::isnan(v) && !std::isnan(best))) best = v;
            for (std::size_t i = 0; i < a.size(); ++i)  // no tie with the largest
                if (a.data()[i] != best) cond(std::abs(a.data()[i] - best) >= 1e-3);
            std::size_t ties = 0;
            for (double v : a) ties += v == best;
            cond(ties == 1);
            return exact(M({1, 1}, best));
        }
        default: break;
    }
    // The newer ops: no reference value; central differences need their inputs away from
    // kinks (abs, leaky_relu at 0; maximum, minimum and max at ties) and from the edges of
    // their domains (sqrt at 0, log1p at -1), and layer_norm a spread in each column.
    Reference unknown;
    unknown.unchecked = true;
    switch (ins.op) {
        case op_sqrt: for (double v : a) cond(v >= 0.25); break;
        case op_log1p: for (double v : a) cond(v >= -0.75); break;
        case op_abs: case op_leaky_relu: away(a, 0, 1e-3); break;
        case op_maximum: case op_minimum:
            if (broadcasts(a, b)) away(broadcast(a, b, [](double x, double y) { return x - y; }), 0, 1e-3);
            break;
        case op_max_axis:
            // the two largest of each row or column must differ
            if (ins.axis == 0 || ins.axis == 1) {
                const std::size_t lines = ins.axis == 0 ? a.shape(1) : a.shape(0);
                const std::size_t along = ins.axis == 0 ? a.shape(0) : a.shape(1);
                for (std::size_t l = 0; l < lines; ++l) {
                    double top = -INFINITY, second = -INFINITY;
                    for (std::size_t k = 0; k < along; ++k) {
                        const double v = ins.axis == 0 ? a(k, l) : a(l, k);
                        if (v > top) { second = top; top = v; } else if (v > second) second = v;
                    }
                    cond(along == 1 || top - second >= 1e-3);
                }
            }
            break;
        case op_layer_norm: case op_batch_norm: case op_norm_affine: {
            // a spread over what is normalised: each column's features, or each row's examples
            const bool rows = ins.op == op_batch_norm || (ins.op == op_norm_affine && ins.knobs[0] % 2);
            const std::size_t lines = rows ? a.shape(0) : a.shape(1), along = rows ? a.shape(1) : a.shape(0);
            for (std::size_t l = 0; l < lines; ++l) {
                double mean = 0, var = 0;
                for (std::size_t k = 0; k < along; ++k) mean += (rows ? a(l, k) : a(k, l)) / double(along);
                for (std::size_t k = 0; k < along; ++k) {
                    const double d = (rows ? a(l, k) : a(k, l)) - mean;
                    var += d * d / double(along);
                }
                cond(var >= 1e-2);
            }
            break;
        }
        case op_pow: for (double v : a) cond(v >= 0.25); cond(std::abs(ins.factor) <= 4); break;
        case op_clamp: away(a, ins.factor, 1e-3); away(a, ins.factor + ins.knobs[0] / 64.0, 1e-3); break;
        case op_scalar: if (ins.knobs[0] % 4 == 3) away(a, 0, 0.25); break;
        case op_loss_matrix: {  // huber's kinks at |prediction - target| = 1
            const M t = target_of(ins, a);
            if (ins.knobs[0] % 3 == 1 && a.shape() == t.shape())
                for (std::size_t k = 0; k < a.size(); ++k) cond(std::abs(std::abs(a.data()[k] - t.data()[k]) - 1) >= 1e-3);
            break;
        }
        // Its mask may be a constant here and a leaf in gradcheck's replay (every input is a
        // leaf there), which where refuses: its gradients are op_where's.
        case op_where_var: cond(false); break;
        case op_unary_param: {
            const double p = parameter_of(ins);
            cond(std::abs(p) <= 4);
            if (ins.knobs[0] % 3 < 2) away(a, 0, 1e-3);
            else away(map(a, [p](double x) { return x * p; }), threshold_of(ins), 1e-2);  // softplus jumps to x there
            break;
        }
        case op_max_pool2d:  // no ties anywhere, so no window's maximum is ambiguous
            for (std::size_t i = 0; i < a.size(); ++i)
                for (std::size_t k = 0; k < i; ++k) cond(std::abs(a.data()[i] - a.data()[k]) >= 1e-3);
            break;
        default: break;
    }
    return unknown;
}

Var<double> apply(const Instr& ins, Var<double> a, Var<double> b, Var<double> c) {
    switch (ins.op) {
        case op_matmul: return matmul(a, b);
        case op_linear: return linear(a, b, c);
        case op_transpose: return transpose(a);
        case op_add: return a + b;
        case op_sub: return a - b;
        case op_mul: return a * b;
        case op_div: return a / b;
        case op_neg: return -a;
        case op_scale: return scale(a, ins.factor);
        case op_exp: return exp(a);
        case op_log: return log(a);
        case op_relu: return relu(a);
        case op_sigmoid: return sigmoid(a);
        case op_tanh: return tanh(a);
        case op_softmax: return softmax(a);
        case op_log_softmax: return log_softmax(a);
        case op_sce_matrix: return softmax_cross_entropy(a, ins.Y);
        case op_sce_labels: return softmax_cross_entropy(a, ins.labels);
        case op_sum: return sum(a);
        case op_sum_axis: return sum(a, ins.axis);
        case op_mean: return mean(a);
        case op_mean_axis: return mean(a, ins.axis);
        case op_mse: return mse(a, b);
        case op_square: return square(a);
        case op_sqrt: return sqrt(a);
        case op_abs: return abs(a);
        case op_log1p: return log1p(a);
        case op_leaky_relu: return leaky_relu(a);
        case op_elu: return elu(a);
        case op_gelu: return gelu(a);
        case op_softplus: return softplus(a);
        case op_silu: return silu(a);
        case op_maximum: return maximum(a, b);
        case op_minimum: return minimum(a, b);
        case op_max_axis: return max(a, ins.axis);
        case op_huber: return huber(a, b);
        case op_bce_logits: return binary_cross_entropy_with_logits(a, b);
        case op_layer_norm: return layer_norm(a);
        case op_pow: return pow(a, ins.factor);
        case op_clamp: return clamp(a, ins.factor, ins.factor + ins.knobs[0] / 64.0);
        case op_where: return autodiff::where(mask_of(ins, a.value()), a, b);
        case op_concat: return ins.knobs[0] % 2 ? concat({a, b}, ins.axis) : concat({a, b, c}, ins.axis);
        case op_slice: return slice(a, ins.axis, ins.knobs[0] % 5, ins.knobs[1] % 6);
        case op_gather: return gather(a, ins.labels, ins.axis);
        case op_reshape: {
            const std::size_t n = a.value().size();
            if (ins.knobs[0] & 1) return reshape(a, Shape{std::size_t(ins.knobs[1] % 5), std::size_t(ins.knobs[2] % 5)});
            const std::size_t rows = divisor_of(n, ins.knobs[1]);
            return reshape(a, Shape{rows, n / rows});
        }
        case op_nll: return nll_loss(a, ins.labels);
        case op_batch_norm: return batch_norm(a);
        case op_dropout: {
            // A generator of its own per run: gradcheck's evaluations must draw the same mask.
            CounterRng rng(ins.knobs[1]);
            const double p = ins.knobs[0] % 8 == 0 ? ins.factor : ins.knobs[0] / 256.0;
            return dropout(a, p, rng);
        }
        case op_conv2d: {
            const ImageShape image = image_of(ins, a.value().shape(0));
            return ins.knobs[5] & 2 ? conv2d(a, image, b, window_of(ins)) : conv2d(a, image, b, c, window_of(ins));
        }
        case op_max_pool2d: return max_pool2d(a, image_of(ins, a.value().shape(0)), window_of(ins));
        case op_avg_pool2d: return avg_pool2d(a, image_of(ins, a.value().shape(0)), window_of(ins));
        case op_scalar:
            switch (ins.knobs[0] % 4) {
                case 0: return a + ins.factor;
                case 1: return ins.factor - a;
                case 2: return a / ins.factor;
                default: return ins.factor / a;
            }
        case op_softmax_axis: return ins.knobs[0] % 2 ? softmax(a, ins.axis) : log_softmax(a, ins.axis);
        case op_linear_act: {
            const Activation activations[4] = {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity};
            return linear(a, b, c, activations[ins.knobs[0] % 4]);
        }
        case op_max_all: return max(a);
        case op_norm_affine: {
            const double eps = ins.knobs[1] % 16 == 0 ? ins.factor : 1e-5 * ins.knobs[1];
            return ins.knobs[0] % 2 ? batch_norm(a, b, c, eps) : layer_norm(a, b, c, eps);
        }
        case op_sce_forms: {
            const double smoothing = ins.knobs[1] % 16 == 0 ? ins.factor : ins.knobs[1] / 240.0;  // above 1 now and then
            switch (ins.knobs[0] % 3) {
                case 0: return softmax_cross_entropy(a, labels_of(ins, a.value()), smoothing);
                case 1: return softmax_cross_entropy(a, target_of(ins, a.value()), smoothing);
                default: return softmax_cross_entropy(a, b);
            }
        }
        case op_loss_matrix:
            switch (ins.knobs[0] % 3) {
                case 0: return binary_cross_entropy_with_logits(a, target_of(ins, a.value()));
                case 1: return huber(a, target_of(ins, a.value()));
                default: return mse(a, target_of(ins, a.value()));
            }
        case op_unary_param:
            switch (ins.knobs[0] % 3) {
                case 0: return leaky_relu(a, parameter_of(ins));
                case 1: return elu(a, parameter_of(ins));
                default: return softplus(a, parameter_of(ins), threshold_of(ins));
            }
        case op_where_var: return autodiff::where(c, a, b);
        default: break;
    }
    fuzz::check_failed("unknown op", __FILE__, __LINE__);
}

// Runs the program on `pool` (the leaves first). In the checked run, each op is compared
// with the reference and `ok` is recorded; replays run only the ops that were ok.
void execute(Program& p, std::vector<Var<double>>& pool, Run& run) {
    for (Instr& ins : p.code) {
        if (!run.checked && !ins.ok) continue;
        const Var<double> a = pool[ins.a % pool.size()], b = pool[ins.b % pool.size()], c = pool[ins.c % pool.size()];
        if (!run.checked) {
            pool.push_back(apply(ins, a, b, c));
            continue;
        }
        bool must_throw = false;
        const bool anomaly = a.tape().detect_anomaly();
        const Reference ref = reference(ins, a.value(), b.value(), c.value(), must_throw, run);
        try {
            Var<double> y = apply(ins, a, b, c);
            FUZZ_CHECK(!must_throw);
            if (!ref.unchecked && !matches(y.value(), ref)) {
                std::fprintf(stderr, "%s on %s, %s, %s:\n", name_of(ins), to_string(a.shape()).c_str(),
                             to_string(b.shape()).c_str(), to_string(c.shape()).c_str());
                for (const M* m : {&a.value(), &b.value(), &y.value(), &ref.value})
                    for (double v : *m) std::fprintf(stderr, "%s%.17g", v == *m->begin() ? "\n  " : " ", v);
                std::fprintf(stderr, "\n");
                FUZZ_CHECK(matches(y.value(), ref));
            }
            if (anomaly) FUZZ_CHECK(all_finite(y.value()));
            for (double v : y.value()) run.well_conditioned = run.well_conditioned && std::abs(v) <= 1e4;
            ins.ok = true;
            pool.push_back(y);
        } catch (const AnomalyError& e) {
            FUZZ_CHECK(anomaly);
            FUZZ_CHECK(std::strncmp(e.what(), "anomaly: ", 9) == 0);
        } catch (const Error& e) {
            FUZZ_CHECK(must_throw || ref.unchecked);
            const std::string name = std::string(name_of(ins)) + ": ";
            if (std::strncmp(e.what(), name.c_str(), name.size()) != 0)
                std::fprintf(stderr, "%s refused without naming itself: %s\n", name_of(ins), e.what());
            FUZZ_CHECK(std::strncmp(e.what(), name.c_str(), name.size()) == 0);  // the message names the op
        }
    }
}

// Bit for bit, NaNs of any payload counting as equal: a replay promises a fresh recording's bits.
bool same_bits(const M& a, const M& b) {
    if (a.shape() != b.shape()) return false;
    for (std::size_t k = 0; k < a.size(); ++k) {
        const double x = a.data()[k], y = b.data()[k];
        if (std::isnan(x) && std::isnan(y)) continue;
        if (std::memcmp(&x, &y, sizeof x) != 0) return false;
    }
    return true;
}

// The program's leaves on `tape` as the fuzzer built them (kind 0 a leaf with a gradient, 1 a
// constant, 2 a parameter, as it is now).
std::vector<Var<double>> leaves_on(Tape<double>& tape, const Program& program, const std::vector<int>& kinds,
                                   std::vector<Parameter<double>>& parameters) {
    std::vector<Var<double>> pool;
    for (std::size_t i = 0, p = 0; i < program.leaves.size(); ++i)
        pool.push_back(kinds[i] == 0   ? tape.leaf(program.leaves[i])
                       : kinds[i] == 1 ? tape.constant(program.leaves[i])
                                       : tape.parameter(parameters[p++]));
    return pool;
}

// The program recorded afresh over its leaves and swept: its value, or nothing if an op refused
// the values. Gradients accumulate into the parameters, zeroed first.
bool record_afresh(Program& program, const std::vector<int>& kinds, std::vector<Parameter<double>>& parameters,
                   double& value) {
    Tape<double> tape;
    std::vector<Var<double>> pool = leaves_on(tape, program, kinds, parameters);
    for (auto& p : parameters) p.zero_grad();
    Run run;
    run.checked = false;
    try {
        execute(program, pool, run);
        tape.backward(pool.back());
    } catch (const Error&) {
        return false;
    }
    value = pool.back().value()(0, 0);
    return true;
}

// A Replay of the recorded step, run over the parameters' new values (the training step moved
// them), equals a fresh recording of the program over them: the loss and every parameter's
// gradient, bit for bit; and it refuses new values exactly when the recording does. The
// value under NoGrad is the recording's too.
void check_replay(Program& program, const std::vector<int>& kinds, std::vector<Parameter<double>>& parameters,
                  Tape<double>& tape, const Var<double>& out) {
    std::optional<Replay<double>> replay;
    try {
        replay.emplace(tape, out);
    } catch (const Error& e) {
        FUZZ_CHECK(std::strncmp(e.what(), "Replay: ", 8) == 0);  // an entry that cannot run again, named
        return;
    }
    double fresh = 0;
    const bool recorded = record_afresh(program, kinds, parameters, fresh);
    std::vector<M> fresh_grads;
    for (const auto& p : parameters) fresh_grads.push_back(p.grad);
    for (auto& p : parameters) p.zero_grad();
    double replayed = 0;
    bool ran = true;
    try {
        replayed = replay->run();
    } catch (const Error&) {
        ran = false;
    }
    if (ran != recorded) std::fprintf(stderr, "replay %s where a fresh recording %s\n", ran ? "ran" : "refused",
                                      recorded ? "ran" : "refused");
    FUZZ_CHECK(ran == recorded);
    if (!ran) return;
    FUZZ_CHECK(same_bits(M{{replayed}}, M{{fresh}}));
    for (std::size_t p = 0; p < parameters.size(); ++p) FUZZ_CHECK(same_bits(parameters[p].grad, fresh_grads[p]));

    Tape<double> evaluation;
    {
        NoGrad<double> no_grad(evaluation);
        std::vector<Var<double>> pool = leaves_on(evaluation, program, kinds, parameters);
        Run run;
        run.checked = false;
        execute(program, pool, run);
        FUZZ_CHECK(same_bits(pool.back().value(), M{{fresh}}));
    }
}

Program parse(FuzzedDataProvider& in) {
    Program p;
    const std::size_t leaves = in.ConsumeIntegralInRange<std::size_t>(1, 4);
    for (std::size_t i = 0; i < leaves; ++i) {
        const std::size_t r = dim(in), c = dim(in);
        p.leaves.push_back(random_matrix(in, r, c));
    }
    const std::size_t steps = in.ConsumeIntegralInRange<std::size_t>(1, 12);
    for (std::size_t s = 0; s < steps && in.remaining_bytes() > 0; ++s) {
        Instr ins;
        ins.op = static_cast<Op>(in.ConsumeIntegralInRange<int>(0, op_count - 1));
        ins.a = in.ConsumeIntegral<std::uint8_t>();
        ins.b = in.ConsumeIntegral<std::uint8_t>();
        ins.c = in.ConsumeIntegral<std::uint8_t>();
        ins.axis = in.ConsumeIntegralInRange<int>(-1, 2);
        ins.factor = special(in.ConsumeIntegral<std::uint8_t>());
        if (ins.op == op_sce_matrix) {
            const std::size_t r = dim(in), c = dim(in);
            ins.Y = random_matrix(in, r, c);
        }
        if (has_knobs(ins.op))
            for (std::uint8_t& k : ins.knobs) k = in.ConsumeIntegral<std::uint8_t>();
        if (ins.op == op_sce_labels || ins.op == op_gather || ins.op == op_nll) {
            const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 5);
            for (std::size_t j = 0; j < n; ++j) ins.labels.push_back(in.ConsumeIntegralInRange<std::size_t>(0, 4));
        }
        p.code.push_back(std::move(ins));
    }
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    set_blas_threads(1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::uint8_t flags = in.ConsumeIntegral<std::uint8_t>();
    Program program = parse(in);
    const double learning_rate = special(in.ConsumeIntegral<std::uint8_t>());  // for the training step

    // Leaves: by their flags, a leaf with a gradient, a constant or a parameter.
    Tape<double> tape;
    tape.set_detect_anomaly(flags & 1);
    std::vector<Parameter<double>> parameters;
    parameters.reserve(program.leaves.size());
    std::vector<Var<double>> pool;
    std::vector<int> kinds;
    for (std::size_t i = 0; i < program.leaves.size(); ++i) {
        const int kind = (flags >> (1 + i)) % 3;
        kinds.push_back(kind);
        if (tape.detect_anomaly() && !all_finite(program.leaves[i])) {
            // A NaN or Inf recorded with anomaly detection on is refused at once.
            Parameter<double> p(program.leaves[i]);
            FUZZ_CHECK_THROWS(kind == 0   ? tape.leaf(program.leaves[i])
                              : kind == 1 ? tape.constant(program.leaves[i])
                                          : tape.parameter(p),
                              AnomalyError);
            return 0;
        }
        if (kind == 0) {
            pool.push_back(tape.leaf(program.leaves[i]));
        } else if (kind == 1) {
            pool.push_back(tape.constant(program.leaves[i]));
        } else {
            parameters.emplace_back(program.leaves[i], "P" + std::to_string(i));
            pool.push_back(tape.parameter(parameters.back()));
        }
    }
    Run run;
    for (const M& leaf : program.leaves)
        for (double v : leaf) run.well_conditioned = run.well_conditioned && std::abs(v) <= 4;
    execute(program, pool, run);
    if (pool.size() == program.leaves.size()) return 0;  // every op refused

    const Var<double> out = pool.back();
    if (out.requires_grad()) {
        try {
            if (out.shape() == Shape{1, 1}) {
                tape.backward(out);
            } else {
                tape.backward(out, M(out.value().shape(), 1.0));
            }
            for (std::size_t i = 0; i < program.leaves.size(); ++i) {
                if (!pool[i].requires_grad()) continue;
                try {
                    FUZZ_CHECK(pool[i].grad().shape() == program.leaves[i].shape());
                } catch (const Error&) {
                    // not on the path to the output: no gradient, and saying so is right
                }
            }
            for (const auto& p : parameters) FUZZ_CHECK(p.grad.shape() == p.value.shape());
        } catch (const AnomalyError&) {
            FUZZ_CHECK(tape.detect_anomaly());
        }
    }

    // A training step on what the program computed, with a learning rate that may be NaN,
    // Inf or huge: whatever the optimizer makes of it, the check every training loop runs
    // after its step must stop the run (TrainingDiverged) exactly when the loss or a
    // parameter is no longer finite, and never otherwise.
    if (!parameters.empty()) {
        std::vector<Parameter<double>*> trained;
        for (auto& p : parameters) trained.push_back(&p);
        try {
            nn::SGD<double> sgd(trained, learning_rate);
            sgd.step();
        } catch (const Error& e) {
            FUZZ_CHECK(std::strncmp(e.what(), "SGD: ", 5) == 0);  // a learning rate it refuses
        }
        const double loss = out.shape() == Shape{1, 1} ? out.value()(0, 0) : 0.0;
        bool finite = std::isfinite(loss);
        for (const auto& p : parameters) finite = finite && all_finite(p.value);
        bool stopped = false;
        try {
            nn::check_finite_step(loss, trained, {0, 0});
        } catch (const nn::TrainingDiverged&) {
            stopped = true;
        }
        FUZZ_CHECK(stopped == !finite);
    }
    if (out.requires_grad() && out.shape() == Shape{1, 1} && !tape.detect_anomaly())
        check_replay(program, kinds, parameters, tape, out);

    // Gradients by central differences, where the values are tame enough for them to mean something.
    if (run.well_conditioned && !tape.detect_anomaly()) {
        const TapeFunction<double> f = [&program](Tape<double>&, const std::vector<Var<double>>& leaves) {
            std::vector<Var<double>> replay(leaves);
            Run r;
            r.checked = false;
            execute(program, replay, r);
            return replay.back();
        };
        GradcheckOptions options;
        options.tolerance = 1e-4;
        const GradcheckResult result = gradcheck(f, program.leaves, options);
        if (!result.passed) {
            std::fprintf(stderr, "gradcheck: %s\n", result.summary().c_str());
            FUZZ_CHECK(result.passed);
        }
    }
    return 0;
}
