#include "autodiff/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

namespace autodiff {

std::string GradcheckResult::summary() const {
    std::ostringstream out;
    out << (passed ? "passed" : "FAILED") << ": worst error " << worst_error << " at input " << input << " ("
        << row << ", " << col << "): analytic " << analytic << ", numeric " << numeric;
    return out.str();
}

namespace {

template <class T>
class Probe {
public:
    Probe(const TapeFunction<T>& f, std::uint64_t seed) : f_(f), seed_(seed) {}

    // Records f on fresh leaves; returns the handles of the leaves and the output.
    Var<T> run(const std::vector<Matrix<T>>& inputs, std::vector<Var<T>>& leaves) {
        tape_.reset();
        leaves.clear();
        for (const Matrix<T>& x : inputs) leaves.push_back(tape_.leaf(x));
        Var<T> y = f_(tape_, leaves);
        if (projection_.size() == 0) {
            std::mt19937_64 rng(seed_);
            std::uniform_real_distribution<double> uniform(-1.0, 1.0);
            projection_ = Matrix<T>(y.value().shape());
            for (T& r : projection_) r = static_cast<T>(uniform(rng));
        }
        return y;
    }

    // f at inputs whose element `element` of input `input` was moved: sum(R * y).
    double projected(const std::vector<Matrix<T>>& inputs, std::size_t input, std::size_t element) {
        std::vector<Var<T>> leaves;
        const Matrix<T>& y = run(inputs, leaves).value();
        // R has the shape of the first output: an output of another shape would be read
        // beyond R (a larger one) or only in part (a smaller one).
        if (shape_of(y) != shape_of(projection_)) {
            const std::size_t cols = inputs[input].shape()[1];
            throw Error("gradcheck: f returned a " + to_string(shape_of(y)) + " output with element (" +
                        std::to_string(element / cols) + ", " + std::to_string(element % cols) + ") of input " +
                        std::to_string(input) + " moved, but a " + to_string(shape_of(projection_)) +
                        " output at the inputs given: the output's shape must not depend on the input values");
        }
        double total = 0;
        for (std::size_t k = 0; k < y.size(); ++k) total += double(projection_.data()[k]) * double(y.data()[k]);
        return total;
    }

    std::vector<Matrix<T>> analytic(const std::vector<Matrix<T>>& inputs) {
        std::vector<Var<T>> leaves;
        Var<T> y = run(inputs, leaves);
        tape_.check(y, "gradcheck (f's output)");
        // An output that needs no gradient has a zero one: the central differences then say
        // whether f really is constant, or lost its gradient (through tape.constant(x.value()),
        // say), instead of backward() refusing the output.
        if (y.requires_grad()) tape_.backward(y, projection_);
        std::vector<Matrix<T>> grads;
        for (std::size_t i = 0; i < leaves.size(); ++i) {
            const Node<T>& n = tape_.node(leaves[i]);
            grads.push_back(tape_.gradient_started(leaves[i].index()) ? n.grad : Matrix<T>(xt::zeros<T>(inputs[i].shape())));
        }
        return grads;
    }

private:
    const TapeFunction<T>& f_;
    std::uint64_t seed_;
    Tape<T> tape_;
    Matrix<T> projection_;
};

}  // namespace

namespace {

double relative_error(double analytic, double numeric) {
    const double error = std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
    return std::isnan(error) ? INFINITY : error;  // a NaN is the worst error there is
}

// A step that leaves x + h and x - h the same T is a step of 0: every correct function failed
// with "numeric nan", nothing saying why (found by an attack). The finer retries may reach
// that point; their estimates are then NaN and never kept.
template <class T>
[[noreturn]] void reject_rounded_step(double step, std::size_t input, std::size_t row, std::size_t col, T x) {
    const char* type = sizeof(T) == 4 ? "float" : "double";
    std::ostringstream out;
    out << "gradcheck: step " << step << " does not move element (" << row << ", " << col << ") of input " << input
        << " (" << x << ") as a " << type << ": x + h and x - h round to the same number; take a larger step ("
        << type << "'s default is " << GradcheckDefaults<T>::step << ")";
    throw Error(out.str());
}

}  // namespace

template <class T>
GradcheckResult gradcheck(const TapeFunction<T>& f, const std::vector<Matrix<T>>& inputs,
                          const GradcheckOptions& options) {
    const double step = options.step.value_or(GradcheckDefaults<T>::step);
    const double tolerance = options.tolerance.value_or(GradcheckDefaults<T>::tolerance);
    // A step of 0 or NaN makes every difference NaN, a NaN or negative tolerance fails every
    // comparison: a correct op would be reported wrong with nothing saying why.
    if (!(std::isfinite(step) && step > 0))
        throw Error("gradcheck: step " + std::to_string(step) + ": it must be finite and above 0");
    if (!(std::isfinite(tolerance) && tolerance >= 0))
        throw Error("gradcheck: tolerance " + std::to_string(tolerance) + ": it must be finite and at least 0");
    Probe<T> probe(f, options.seed);
    const std::vector<Matrix<T>> analytic = probe.analytic(inputs);
    std::vector<Matrix<T>> shifted = inputs;
    GradcheckResult result;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const std::size_t cols = inputs[i].shape()[1];
        for (std::size_t k = 0; k < inputs[i].size(); ++k) {
            const T original = inputs[i].data()[k];
            // The central difference with step h, over the points as T holds them: in float,
            // x + h rounds, and dividing by the step asked for instead of the one taken would
            // be an error of its own.
            auto central_difference = [&](double h) {
                const T above = T(original + h), below = T(original - h);
                shifted[i].data()[k] = above;
                const double plus = probe.projected(shifted, i, k);
                shifted[i].data()[k] = below;
                const double minus = probe.projected(shifted, i, k);
                shifted[i].data()[k] = original;
                return (plus - minus) / (double(above) - double(below));
            };
            const double a = analytic[i].data()[k];
            double h = step * std::max(1.0, std::abs(double(original)));
            if (T(original + h) == T(original - h)) reject_rounded_step(step, i, k / cols, k % cols, original);
            double numeric = central_difference(h);
            double error = relative_error(a, numeric);
            if (!(error <= tolerance)) {
                // The estimate may be what is wrong: a step that straddles a kink (relu's 0
                // inside a steep function) or meets strong curvature. Retry with steps 4, 16
                // and 64 times smaller, each also extrapolated with the previous one
                // (Richardson: D(h/4) + (D(h/4) - D(h)) / 15 cancels the h^2 term), and keep
                // the estimate closest to the analytic value. Every candidate estimates the
                // true derivative, so a wrong gradient stays far from all of them.
                double coarser = numeric;
                for (int refinement = 0; refinement < 3; ++refinement) {
                    h /= 4;
                    const double finer = central_difference(h);
                    for (double candidate : {finer, finer + (finer - coarser) / 15}) {
                        const double e = relative_error(a, candidate);
                        if (e < error) {
                            error = e;
                            numeric = candidate;
                        }
                    }
                    coarser = finer;
                }
            }
            if (error > result.worst_error || (k == 0 && i == 0))
                result = {error, i, k / cols, k % cols, a, numeric, true};
        }
    }
    result.passed = result.worst_error <= tolerance;
    return result;
}

template GradcheckResult gradcheck<float>(const TapeFunction<float>&, const std::vector<Matrix<float>>&,
                                          const GradcheckOptions&);
template GradcheckResult gradcheck<double>(const TapeFunction<double>&, const std::vector<Matrix<double>>&,
                                           const GradcheckOptions&);

}  // namespace autodiff
