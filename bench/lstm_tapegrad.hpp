// bench/lstm_tapegrad.hpp: the recurrent workload (lstm_problem.hpp) written with tapegrad as
// a user would: one Parameter per weight vector, one tape entry per elementwise op on a
// 14x1 column, the loss the mean of softmax_cross_entropy over the steps.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "lstm_problem.hpp"

namespace bench::lstm {

class Tapegrad {
public:
    using Var = autodiff::Var<double>;
    using Matrix = autodiff::Matrix<double>;

    explicit Tapegrad(const Problem& p) : p_(p) {
        auto column = [&](const std::vector<double>& v) {
            Matrix m({v.size(), 1});
            std::copy(v.begin(), v.end(), m.begin());
            return m;
        };
        params_.reserve(p.layer_params.size() + 2);
        for (const auto& v : p.layer_params) params_.emplace_back(column(v));
        params_.emplace_back(column(p.w_out));
        params_.emplace_back(column(p.b_out));
        for (std::size_t ch = 0; ch < p.n; ++ch) {
            Matrix m = xt::zeros<double>({p.n, std::size_t(1)});
            m(ch, 0) = 1;
            one_hot_.push_back(std::move(m));
        }
        zero_ = xt::zeros<double>({p.n, std::size_t(1)});
        for (std::size_t t = 0; t + 1 < p.chars.size(); ++t) targets_.push_back({p.chars[t + 1]});
    }

    // Records the loss (the caller chooses NoGrad or not); returns its handle.
    Var record() {
        tape_.reset();
        std::vector<Var> w;
        w.reserve(params_.size());
        for (auto& prm : params_) w.push_back(tape_.parameter(prm));
        const std::size_t L = p_.layers;
        h_.assign(L, tape_.constant(zero_));
        c_.assign(L, h_[0]);
        Var total;
        for (std::size_t t = 0; t < p_.steps; ++t) {
            Var x = tape_.constant(one_hot_[p_.chars[t]]);
            for (std::size_t l = 0; l < L; ++l) {
                const Var* g = &w[l * kPerLayer];
                const Var f = sigmoid(x * g[kWf] + g[kBf]);
                const Var i = sigmoid(h_[l] * g[kWi] + g[kBi]);
                const Var o = sigmoid(x * g[kWo] + g[kBo]);
                const Var gc = tanh(h_[l] * g[kWc] + g[kBc]);
                c_[l] = c_[l] * f + i * gc;
                h_[l] = o * tanh(c_[l]);
                x = h_[l];
            }
            const Var yhat = x * w[w.size() - 2] + w[w.size() - 1];
            const Var loss = autodiff::softmax_cross_entropy(yhat, targets_[t]);
            total = t == 0 ? loss : total + loss;
        }
        return scale(total, 1.0 / double(p_.steps));
    }

    double loss_and_gradient() {
        replay_.reset();
        for (auto& prm : params_) prm.zero_grad();
        const Var loss = record();
        tape_.backward(loss);
        return loss.value()(0, 0);
    }

    // The same gradient by replaying the first recording (autodiff::Replay): every entry's
    // forward and backward run again without being recorded.
    double replayed_loss_and_gradient() {
        for (auto& prm : params_) prm.zero_grad();
        if (!replay_) {
            const Var loss = record();
            tape_.backward(loss);
            replay_ = std::make_unique<autodiff::Replay<double>>(tape_, loss);
            return loss.value()(0, 0);
        }
        return replay_->run();
    }

    double loss() {
        replay_.reset();
        autodiff::NoGrad<double> no_grad(tape_);
        return record().value()(0, 0);
    }

    // In the layout of lstm_problem.hpp's Gradient.
    Gradient gradient() const {
        Gradient g;
        auto vec = [](const Matrix& m) { return std::vector<double>(m.begin(), m.end()); };
        for (std::size_t k = 0; k + 2 < params_.size(); ++k) g.layer_params.push_back(vec(params_[k].grad));
        g.w_out = vec(params_[params_.size() - 2].grad);
        g.b_out = vec(params_[params_.size() - 1].grad);
        return g;
    }

    autodiff::Tape<double>& tape() { return tape_; }

private:
    const Problem& p_;
    autodiff::Tape<double> tape_;
    std::vector<autodiff::Parameter<double>> params_;
    std::vector<Matrix> one_hot_;
    Matrix zero_;
    std::vector<autodiff::Labels> targets_;
    std::vector<Var> h_, c_;
    std::unique_ptr<autodiff::Replay<double>> replay_;
};

}  // namespace bench::lstm
