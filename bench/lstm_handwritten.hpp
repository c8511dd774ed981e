// bench/lstm_handwritten.hpp: the hand-written reference for the recurrent workload
// (lstm_problem.hpp): the loss alone (primal), and the loss with its gradient (a forward
// that keeps every gate, then back-propagation through time). Plain loops over n-vectors,
// every buffer allocated in the constructor.
//
// Its exp, sigmoid and tanh come from a Math policy: the standard library's (LibmMath, what a
// user writes: the reference), or tapegrad's own vectorisable kernels (KernelMath, the
// functions its sigmoid and tanh ops compute), which separates what the tape costs from what
// the math costs.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "autodiff/exp_kernel.hpp"
#include "autodiff/ops/activation_rules.hpp"
#include "lstm_problem.hpp"

namespace bench::lstm {

struct LibmMath {
    static double exp(double x) { return std::exp(x); }
    static double tanh(double x) { return std::tanh(x); }
    static double sigmoid(double z) { return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z)); }
};

struct KernelMath {
    static double exp(double x) { return autodiff::kernels::exp_nonpositive_one(x); }  // only of x - max <= 0
    static double tanh(double x) { return autodiff::ops::TanhRule::f(x); }
    static double sigmoid(double z) { return autodiff::ops::SigmoidRule::f(z); }
};

template <class Math>
class HandwrittenWith {
public:
    explicit HandwrittenWith(const Problem& p)
        : p_(p), n_(p.n), L_(p.layers), T_(p.steps),
          h_((T_ + 1) * L_ * n_), c_((T_ + 1) * L_ * n_), f_(T_ * L_ * n_), i_(T_ * L_ * n_),
          o_(T_ * L_ * n_), g_(T_ * L_ * n_), tc_(T_ * L_ * n_), yhat_(n_), dh_(L_ * n_), dc_(L_ * n_),
          dx_(n_), onehot_(n_) {
        grad_.layer_params.assign(L_ * kPerLayer, std::vector<double>(n_));
        grad_.w_out.assign(n_, 0.0);
        grad_.b_out.assign(n_, 0.0);
    }

    // The loss alone: the state rolls from step to step, nothing is kept.
    double loss() {
        std::vector<double>& h = dh_;  // reused as the rolling state (L x n each)
        std::vector<double>& c = dc_;
        std::fill(h.begin(), h.end(), 0.0);
        std::fill(c.begin(), c.end(), 0.0);
        double total = 0;
        for (std::size_t t = 0; t < T_; ++t) {
            const double* x = one_hot(p_.chars[t]);
            for (std::size_t l = 0; l < L_; ++l) {
                double* hl = &h[l * n_];
                double* cl = &c[l * n_];
                for (std::size_t k = 0; k < n_; ++k) {
                    const double f = sigmoid(x[k] * prm(l, kWf)[k] + prm(l, kBf)[k]);
                    const double i = sigmoid(hl[k] * prm(l, kWi)[k] + prm(l, kBi)[k]);
                    const double o = sigmoid(x[k] * prm(l, kWo)[k] + prm(l, kBo)[k]);
                    const double g = Math::tanh(hl[k] * prm(l, kWc)[k] + prm(l, kBc)[k]);
                    cl[k] = cl[k] * f + i * g;
                    hl[k] = o * Math::tanh(cl[k]);
                }
                x = hl;
            }
            total += step_loss(x, p_.chars[t + 1]);
        }
        return total / double(T_);
    }

    // The loss and its gradient (into gradient()).
    double loss_and_gradient() {
        const double total = forward_keeping_gates();
        backward();
        return total;
    }
    const Gradient& gradient() const { return grad_; }

private:
    static double sigmoid(double z) { return Math::sigmoid(z); }
    const double* prm(std::size_t l, std::size_t gate) const { return p_.layer_params[l * kPerLayer + gate].data(); }
    double* dprm(std::size_t l, std::size_t gate) { return grad_.layer_params[l * kPerLayer + gate].data(); }
    const double* one_hot(std::size_t ch) {
        std::fill(onehot_.begin(), onehot_.end(), 0.0);
        onehot_[ch] = 1.0;
        return onehot_.data();
    }
    // Index of (step, layer) in the per-step arrays; h_ and c_ have one more step (t = 0 is the zero state).
    std::size_t at(std::size_t t, std::size_t l) const { return (t * L_ + l) * n_; }

    // ŷ = h⊙w_out + b_out into yhat_; returns −(ŷ[target] − log Σ exp ŷ).
    double step_loss(const double* h, std::size_t target) {
        double mx = -1e300;
        for (std::size_t k = 0; k < n_; ++k) {
            yhat_[k] = h[k] * p_.w_out[k] + p_.b_out[k];
            mx = std::max(mx, yhat_[k]);
        }
        double s = 0;
        for (std::size_t k = 0; k < n_; ++k) s += Math::exp(yhat_[k] - mx);
        return -(yhat_[target] - mx - std::log(s));
    }

    double forward_keeping_gates() {
        std::fill(h_.begin(), h_.begin() + L_ * n_, 0.0);
        std::fill(c_.begin(), c_.begin() + L_ * n_, 0.0);
        double total = 0;
        for (std::size_t t = 0; t < T_; ++t) {
            for (std::size_t l = 0; l < L_; ++l) {
                const double* x = l == 0 ? one_hot(p_.chars[t]) : &h_[at(t + 1, l - 1)];
                const double* hp = &h_[at(t, l)];
                const double* cp = &c_[at(t, l)];
                double* hn = &h_[at(t + 1, l)];
                double* cn = &c_[at(t + 1, l)];
                const std::size_t g0 = at(t, l);
                for (std::size_t k = 0; k < n_; ++k) {
                    const double f = f_[g0 + k] = sigmoid(x[k] * prm(l, kWf)[k] + prm(l, kBf)[k]);
                    const double i = i_[g0 + k] = sigmoid(hp[k] * prm(l, kWi)[k] + prm(l, kBi)[k]);
                    const double o = o_[g0 + k] = sigmoid(x[k] * prm(l, kWo)[k] + prm(l, kBo)[k]);
                    const double g = g_[g0 + k] = Math::tanh(hp[k] * prm(l, kWc)[k] + prm(l, kBc)[k]);
                    cn[k] = cp[k] * f + i * g;
                    const double tc = tc_[g0 + k] = Math::tanh(cn[k]);
                    hn[k] = o * tc;
                }
            }
            total += step_loss(&h_[at(t + 1, L_ - 1)], p_.chars[t + 1]);
        }
        return total / double(T_);
    }

    void backward() {
        for (auto& v : grad_.layer_params) std::fill(v.begin(), v.end(), 0.0);
        std::fill(grad_.w_out.begin(), grad_.w_out.end(), 0.0);
        std::fill(grad_.b_out.begin(), grad_.b_out.end(), 0.0);
        std::fill(dh_.begin(), dh_.end(), 0.0);  // dLoss/dh of each layer's state, from step t+1
        std::fill(dc_.begin(), dc_.end(), 0.0);
        const double inv_T = 1.0 / double(T_);
        for (std::size_t t = T_; t-- > 0;) {
            // Output: dŷ = (softmax(ŷ) − onehot(y_{t+1})) / T.
            const double* htop = &h_[at(t + 1, L_ - 1)];
            step_loss(htop, 0);  // recomputes ŷ into yhat_
            double mx = -1e300, s = 0;
            for (std::size_t k = 0; k < n_; ++k) mx = std::max(mx, yhat_[k]);
            for (std::size_t k = 0; k < n_; ++k) s += Math::exp(yhat_[k] - mx);
            double* dtop = &dh_[(L_ - 1) * n_];
            for (std::size_t k = 0; k < n_; ++k) {
                const double dy = (Math::exp(yhat_[k] - mx) / s - (k == p_.chars[t + 1] ? 1.0 : 0.0)) * inv_T;
                grad_.w_out[k] += dy * htop[k];
                grad_.b_out[k] += dy;
                dtop[k] += dy * p_.w_out[k];
            }
            for (std::size_t l = L_; l-- > 0;) {
                const double* x = l == 0 ? one_hot(p_.chars[t]) : &h_[at(t + 1, l - 1)];
                const double* hp = &h_[at(t, l)];
                const double* cp = &c_[at(t, l)];
                const std::size_t g0 = at(t, l);
                double* dh = &dh_[l * n_];
                double* dc = &dc_[l * n_];
                for (std::size_t k = 0; k < n_; ++k) {
                    const double f = f_[g0 + k], i = i_[g0 + k], o = o_[g0 + k], g = g_[g0 + k], tc = tc_[g0 + k];
                    const double d_o = dh[k] * tc;
                    const double dcc = dc[k] + dh[k] * o * (1 - tc * tc);
                    const double zf = dcc * cp[k] * f * (1 - f);
                    const double zi = dcc * g * i * (1 - i);
                    const double zo = d_o * o * (1 - o);
                    const double zg = dcc * i * (1 - g * g);
                    dprm(l, kWf)[k] += zf * x[k];
                    dprm(l, kBf)[k] += zf;
                    dprm(l, kWi)[k] += zi * hp[k];
                    dprm(l, kBi)[k] += zi;
                    dprm(l, kWo)[k] += zo * x[k];
                    dprm(l, kBo)[k] += zo;
                    dprm(l, kWc)[k] += zg * hp[k];
                    dprm(l, kBc)[k] += zg;
                    dx_[k] = zf * prm(l, kWf)[k] + zo * prm(l, kWo)[k];
                    dh[k] = zi * prm(l, kWi)[k] + zg * prm(l, kWc)[k];  // to step t-1
                    dc[k] = dcc * f;
                }
                if (l > 0)  // the layer below's h at step t also feeds its own step t+1
                    for (std::size_t k = 0; k < n_; ++k) dh_[(l - 1) * n_ + k] += dx_[k];
            }
        }
    }

    const Problem& p_;
    std::size_t n_, L_, T_;
    std::vector<double> h_, c_, f_, i_, o_, g_, tc_;
    std::vector<double> yhat_, dh_, dc_, dx_, onehot_;
    Gradient grad_;
};

using Handwritten = HandwrittenWith<LibmMath>;

}  // namespace bench::lstm
