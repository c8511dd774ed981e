#pragma once
/// @file
/// Optimizers over a list of parameters. Each step reads Parameter::grad as backward()
/// accumulated it; zero_grad() clears the gradients for the next step.
/// Hyper-parameters are checked on construction: a NaN or negative rate throws.
/// Every update is one fused pass over each parameter's numbers (weight decay included).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"
#include "nn/listed_parameters.hpp"

namespace nn {

template <class T>
class Optimizer {
public:
    Optimizer(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate);
    virtual ~Optimizer() = default;
    virtual void step() = 0;
    void zero_grad();
    /// step() then zero_grad(), as nn::Trainer calls them after every batch. An optimizer may
    /// do both in one pass over each parameter (SGD and Adam do), and check there that every updated
    /// value is finite: true means it did and found them all finite, so the caller need not
    /// read them again; false, that it did not look or found otherwise. By default: step();
    /// zero_grad(); false.
    virtual bool step_and_zero_grad();

    T learning_rate() const { return learning_rate_; }
    /// For schedules: finite and >= 0 (a schedule may reach 0; then step() changes nothing
    /// but the optimizer's state).
    void set_learning_rate(T rate);
    const std::vector<autodiff::Parameter<T>*>& parameters() const { return parameters_; }
    /// Throws autodiff::Error if a parameter was destroyed or moved from since the optimizer
    /// was made (every step and zero_grad ask first, instead of writing to freed memory).
    void require_parameters_alive() const;

    virtual std::string name() const = 0;
    /// What a checkpoint keeps: hyper-parameters as text, and the per-parameter state arrays
    /// (velocities, moments) keyed by name, so that a resumed run continues exactly. Throws
    /// autodiff::Error if a parameter was resized since its state was made (or loaded).
    virtual std::map<std::string, std::string> hyperparameters() const = 0;
    virtual std::map<std::string, autodiff::Matrix<T>> state() const { return {}; }
    /// Throws autodiff::Error, changing nothing, unless `state` is what state() gives for these
    /// parameters: the same names, none more, the same shapes, every number finite.
    virtual void load_state(const std::map<std::string, autodiff::Matrix<T>>& state);

protected:
    /// step_and_zero_grad for an optimizer whose update can zero each gradient in its own pass:
    /// zeroing_pass() (which returns whether it found every new weight finite), unless a
    /// parameter is listed twice: zeroed in the pass, it would lose its gradient before its
    /// second update, so then step(); zero_grad(); false.
    template <class ZeroingPass>
    bool step_zeroing_in_pass(ZeroingPass&& zeroing_pass) {
        return distinct_ ? zeroing_pass() : Optimizer::step_and_zero_grad();
    }

    std::vector<autodiff::Parameter<T>*> parameters_;
    T learning_rate_;

private:
    bool distinct_;  // no parameter listed twice
    ListedParameters<T> listed_;  // parameters_, asked whether each still lives
    [[noreturn, gnu::cold, gnu::noinline]] void reject_dead_parameter(std::size_t i) const;
};

/// W = W - learning_rate * (dW + weight_decay * W): the notebook's update_parameters, with
/// an optional L2 penalty as torch.optim.SGD's weight_decay.
template <class T = double>
class SGD : public Optimizer<T> {
public:
    SGD(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate, T weight_decay = T(0));
    void step() override;
    bool step_and_zero_grad() override;  // one pass per parameter: the update, the finiteness check, the zeroing
    std::string name() const override { return "sgd"; }
    std::map<std::string, std::string> hyperparameters() const override;

private:
    bool update(bool fused);  // step(); if fused, zero_grad() and the finiteness check in the same pass
    T weight_decay_;
};

/// g = dW + weight_decay * W; v = momentum * v + g; W = W - learning_rate * v (PyTorch's convention).
template <class T = double>
class Momentum : public Optimizer<T> {
public:
    Momentum(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate, T momentum = T(0.9),
             T weight_decay = T(0));
    void step() override;
    std::string name() const override { return "momentum"; }
    std::map<std::string, std::string> hyperparameters() const override;
    std::map<std::string, autodiff::Matrix<T>> state() const override;
    void load_state(const std::map<std::string, autodiff::Matrix<T>>& state) override;

private:
    T momentum_, weight_decay_;
    std::vector<autodiff::Matrix<T>> velocity_;
};

/// Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam; weight_decay adds the
/// L2 term weight_decay * W to the gradient, as torch.optim.Adam does.
template <class T = double>
class Adam : public Optimizer<T> {
public:
    Adam(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate = T(1e-3), T beta1 = T(0.9),
         T beta2 = T(0.999), T epsilon = T(1e-8), T weight_decay = T(0));
    void step() override;
    bool step_and_zero_grad() override;  // one pass per parameter: the update, the finiteness check, the zeroing
    std::string name() const override { return decoupled_ ? "adamw" : "adam"; }
    std::map<std::string, std::string> hyperparameters() const override;
    std::map<std::string, autodiff::Matrix<T>> state() const override;
    void load_state(const std::map<std::string, autodiff::Matrix<T>>& state) override;

protected:
    struct Decoupled {};
    Adam(Decoupled, std::vector<autodiff::Parameter<T>*> parameters, T learning_rate, T weight_decay, T beta1,
         T beta2, T epsilon);

private:
    bool update(bool zero_gradient);  // step(), and zero_grad() in the same pass if asked; true if all finite
    T beta1_, beta2_, epsilon_, weight_decay_;
    bool decoupled_ = false;
    std::vector<autodiff::Matrix<T>> m_, v_;
    std::uint64_t steps_ = 0;
};

/// AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW: the decay is decoupled from the
/// gradient, W = W - learning_rate * weight_decay * W, then Adam's step; in the same pass.
template <class T = double>
class AdamW : public Adam<T> {
public:
    AdamW(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate = T(1e-3), T weight_decay = T(1e-2),
          T beta1 = T(0.9), T beta2 = T(0.999), T epsilon = T(1e-8))
        : Adam<T>(typename Adam<T>::Decoupled{}, std::move(parameters), learning_rate, weight_decay, beta1, beta2,
                  epsilon) {}
};

/// Scales every gradient by max_norm / norm when their joint L2 norm exceeds max_norm (as
/// torch.nn.utils.clip_grad_norm_, with its 1e-6 guard); returns the norm before clipping.
/// A parameter listed more than once counts, and is scaled, once.
/// Throws autodiff::Error if the norm is not finite, naming the first non-finite parameter.
template <class T>
double clip_grad_norm(const std::vector<autodiff::Parameter<T>*>& parameters, double max_norm);

/// "sgd" (momentum 0) / "momentum" / "adam" / "adamw" by name, for the command line and
/// checkpoints; weight_decay is L2 for the first three and decoupled for adamw.
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name, std::vector<autodiff::Parameter<T>*> parameters,
                                             T learning_rate, T momentum = T(0.9), T weight_decay = T(0));

}  // namespace nn
