#include "nn/normalization.hpp"

#include <cmath>
#include <sstream>

#include "nn/layer_checks.hpp"

namespace nn {

namespace {

std::string with_eps(const std::string& head, double eps) {
    std::ostringstream out;
    out << head << ", eps=" << eps << ")";
    return out.str();
}

// In T too: the layer computes with T(eps), and a float BatchNorm given 1e-300 divided by
// sqrt(0 + 0) in evaluation wherever a feature's running variance was 0 (every output NaN,
// silently; found by an attack), where training refused it only at the first step.
template <class T>
void require_eps(const std::string& who, double eps) {
    if (!(std::isfinite(eps) && eps > 0)) throw autodiff::Error(who + ": eps must be a positive finite number");
    const T as_t = static_cast<T>(eps);
    if (!(std::isfinite(as_t) && as_t > T(0)))
        throw autodiff::Error(who + ": eps must be a positive finite number as a " + (sizeof(T) == 4 ? "float" : "double") +
                              " too, and it is " + std::to_string(as_t) + " as one");
}

}  // namespace

template <class T>
LayerNorm<T>::LayerNorm(std::size_t n, double eps)
    : gain(this->add_parameter("gain", xt::ones<T>({n, std::size_t(1)}))),
      bias(this->add_parameter("bias", xt::zeros<T>({n, std::size_t(1)}))),
      eps_(eps) {
    if (n == 0) throw autodiff::Error("LayerNorm: needs at least 1 feature");
    require_eps<T>(describe(), eps);
}

template <class T>
std::string LayerNorm<T>::describe() const {
    return with_eps("LayerNorm(" + std::to_string(gain.value.shape()[0]), eps_);
}

template <class T>
autodiff::Var<T> LayerNorm<T>::forward(autodiff::Var<T> x) {
    require_rows(*this, x, gain.value.shape()[0]);
    autodiff::Tape<T>& tape = x.tape();
    return autodiff::layer_norm(x, tape.parameter(gain), tape.parameter(bias), T(eps_));
}

template <class T>
BatchNorm<T>::BatchNorm(std::size_t n, double momentum, double eps)
    : gain(this->add_parameter("gain", xt::ones<T>({n, std::size_t(1)}))),
      bias(this->add_parameter("bias", xt::zeros<T>({n, std::size_t(1)}))),
      running_mean(this->add_buffer("running_mean", xt::zeros<T>({n, std::size_t(1)}))),
      running_var(this->add_buffer("running_var", xt::ones<T>({n, std::size_t(1)}))),
      momentum_(momentum),
      eps_(eps) {
    if (n == 0) throw autodiff::Error("BatchNorm: needs at least 1 feature");
    require_eps<T>(describe(), eps);
    if (!(momentum >= 0 && momentum <= 1)) throw autodiff::Error(describe() + ": momentum must be in [0, 1]");
}

template <class T>
std::string BatchNorm<T>::describe() const {
    std::ostringstream head;
    head << "BatchNorm(" << gain.value.shape()[0] << ", momentum=" << momentum_;
    return with_eps(head.str(), eps_);
}

template <class T>
autodiff::Var<T> BatchNorm<T>::forward(autodiff::Var<T> x) {
    const std::size_t n = gain.value.shape()[0], m = x.cols();
    require_rows(*this, x, n);
    autodiff::Tape<T>& tape = x.tape();
    if (this->is_training()) {
        if (m < 2)
            throw autodiff::Error(this->who() + ": its input is " + autodiff::to_string(x.shape()) +
                                  " but training needs at least 2 examples (columns) for a batch variance (a last "
                                  "batch of 1 example: drop it with Trainer::set_drop_last(true), or choose another batch size)");
        autodiff::Var<T> y = autodiff::batch_norm(x, tape.parameter(gain), tape.parameter(bias), T(eps_));
        const autodiff::BatchStatistics<T> stats = autodiff::batch_norm_statistics(y);
        const T keep = T(1 - momentum_), take = T(momentum_), unbias = T(double(m) / double(m - 1));
        for (std::size_t i = 0; i < n; ++i) {
            running_mean(i, 0) = keep * running_mean(i, 0) + take * stats.mean(i, 0);
            running_var(i, 0) = keep * running_var(i, 0) + take * stats.var(i, 0) * unbias;
        }
        return y;
    }
    // (x - mean) / sqrt(var + eps) * gain + bias = x * (gain s) + (bias - gain s mean), s = 1/sqrt(var + eps).
    autodiff::ensure_shape(inverse_std_, {n, 1});
    for (std::size_t i = 0; i < n; ++i) {
        // A checkpoint's finite but negative variance (or one assigned) made every output NaN
        // silently, and an infinite one (assigned) made its feature the bias whatever the
        // input (both found by attacks).
        if (!(running_var(i, 0) >= T(0) && std::isfinite(running_var(i, 0))))
            throw autodiff::Error(this->who() + ": running_var holds " + std::to_string(running_var(i, 0)) +
                                  " at row " + std::to_string(i) +
                                  " (a variance of data is finite and never negative: loaded or assigned?)");
        // The same for a NaN or an infinite mean, assigned by hand (a checkpoint holds none).
        if (!std::isfinite(running_mean(i, 0)))
            throw autodiff::Error(this->who() + ": running_mean holds " + std::to_string(running_mean(i, 0)) +
                                  " at row " + std::to_string(i) + " (a mean of data is finite: assigned?)");
        inverse_std_(i, 0) = T(1) / std::sqrt(running_var(i, 0) + T(eps_));
    }
    shift_ = -running_mean * inverse_std_;
    autodiff::Var<T> g = tape.parameter(gain);
    return x * (g * tape.constant(inverse_std_)) + (g * tape.constant(shift_) + tape.parameter(bias));
}

template class LayerNorm<float>;
template class LayerNorm<double>;
template class BatchNorm<float>;
template class BatchNorm<double>;

}  // namespace nn
