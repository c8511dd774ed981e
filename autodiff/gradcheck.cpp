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

    double projected(const std::vector<Matrix<T>>& inputs) {
        std::vector<Var<T>> leaves;
        const Matrix<T>& y = run(inputs, leaves).value();
        double total = 0;
        for (std::size_t k = 0; k < y.size(); ++k) total += double(projection_.data()[k]) * double(y.data()[k]);
        return total;
    }

    std::vector<Matrix<T>> analytic(const std::vector<Matrix<T>>& inputs) {
        std::vector<Var<T>> leaves;
        Var<T> y = run(inputs, leaves);
        tape_.backward(y, projection_);
        std::vector<Matrix<T>> grads;
        for (std::size_t i = 0; i < leaves.size(); ++i) {
            const Node<T>& n = tape_.node(leaves[i]);
            grads.push_back(n.grad_ready ? n.grad : Matrix<T>(xt::zeros<T>(inputs[i].shape())));
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

template <class T>
GradcheckResult gradcheck(const TapeFunction<T>& f, const std::vector<Matrix<T>>& inputs,
                          const GradcheckOptions& options) {
    const double step = options.step.value_or(GradcheckDefaults<T>::step);
    Probe<T> probe(f, options.seed);
    const std::vector<Matrix<T>> analytic = probe.analytic(inputs);
    std::vector<Matrix<T>> shifted = inputs;
    GradcheckResult result;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const std::size_t cols = inputs[i].shape()[1];
        for (std::size_t k = 0; k < inputs[i].size(); ++k) {
            const T original = inputs[i].data()[k];
            const double h = step * std::max(1.0, std::abs(double(original)));
            // The points as T holds them: in float, x + h rounds, and dividing by the step
            // that was asked for instead of the one taken would be an error of its own.
            const T above = T(original + h), below = T(original - h);
            shifted[i].data()[k] = above;
            const double plus = probe.projected(shifted);
            shifted[i].data()[k] = below;
            const double minus = probe.projected(shifted);
            shifted[i].data()[k] = original;
            const double numeric = (plus - minus) / (double(above) - double(below));
            const double a = analytic[i].data()[k];
            double error = std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
            if (std::isnan(error)) error = INFINITY;  // a NaN is the worst error there is
            if (error > result.worst_error || (k == 0 && i == 0))
                result = {error, i, k / cols, k % cols, a, numeric, true};
        }
    }
    result.passed = result.worst_error <= options.tolerance.value_or(GradcheckDefaults<T>::tolerance);
    return result;
}

template GradcheckResult gradcheck<float>(const TapeFunction<float>&, const std::vector<Matrix<float>>&,
                                          const GradcheckOptions&);
template GradcheckResult gradcheck<double>(const TapeFunction<double>&, const std::vector<Matrix<double>>&,
                                           const GradcheckOptions&);

}  // namespace autodiff
