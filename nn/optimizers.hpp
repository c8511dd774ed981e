#pragma once
/// @file
/// Optimizers over a list of parameters. Each step reads Parameter::grad as backward()
/// accumulated it; zero_grad() clears the gradients for the next step.
/// Hyper-parameters are checked on construction: a NaN or negative rate throws.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

namespace nn {

template <class T>
class Optimizer {
public:
    Optimizer(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate);
    virtual ~Optimizer() = default;
    virtual void step() = 0;
    void zero_grad();

    T learning_rate() const { return learning_rate_; }
    void set_learning_rate(T rate);  ///< for schedules; checked like the constructor's

    virtual std::string name() const = 0;
    /// What a checkpoint keeps: hyper-parameters as text, and the per-parameter state arrays
    /// (velocities, moments) keyed by name, so that a resumed run continues exactly.
    virtual std::map<std::string, std::string> hyperparameters() const = 0;
    virtual std::map<std::string, autodiff::Matrix<T>> state() const { return {}; }
    virtual void load_state(const std::map<std::string, autodiff::Matrix<T>>& state);

protected:
    std::vector<autodiff::Parameter<T>*> parameters_;
    T learning_rate_;
};

/// W = W - learning_rate * dW: the notebook's update_parameters.
template <class T = double>
class SGD : public Optimizer<T> {
public:
    SGD(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate);
    void step() override;
    std::string name() const override { return "sgd"; }
    std::map<std::string, std::string> hyperparameters() const override;
};

/// v = momentum * v + dW; W = W - learning_rate * v (PyTorch's convention).
template <class T = double>
class Momentum : public Optimizer<T> {
public:
    Momentum(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate, T momentum = T(0.9));
    void step() override;
    std::string name() const override { return "momentum"; }
    std::map<std::string, std::string> hyperparameters() const override;
    std::map<std::string, autodiff::Matrix<T>> state() const override;
    void load_state(const std::map<std::string, autodiff::Matrix<T>>& state) override;

private:
    T momentum_;
    std::vector<autodiff::Matrix<T>> velocity_;
};

/// Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam.
template <class T = double>
class Adam : public Optimizer<T> {
public:
    Adam(std::vector<autodiff::Parameter<T>*> parameters, T learning_rate = T(1e-3), T beta1 = T(0.9),
         T beta2 = T(0.999), T epsilon = T(1e-8));
    void step() override;
    std::string name() const override { return "adam"; }
    std::map<std::string, std::string> hyperparameters() const override;
    std::map<std::string, autodiff::Matrix<T>> state() const override;
    void load_state(const std::map<std::string, autodiff::Matrix<T>>& state) override;

private:
    T beta1_, beta2_, epsilon_;
    std::vector<autodiff::Matrix<T>> m_, v_;
    std::uint64_t steps_ = 0;
};

/// "sgd" (momentum 0) / "momentum" / "adam" by name, for the command line and checkpoints.
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name, std::vector<autodiff::Parameter<T>*> parameters,
                                             T learning_rate, T momentum = T(0.9));

}  // namespace nn
