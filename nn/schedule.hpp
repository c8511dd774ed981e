#pragma once
/// @file
/// Learning-rate schedules as pure functions of the step (an epoch or a batch, as the caller
/// counts), so a resumed run picks up exactly the rate it would have had.
///
///   constant    base
///   step        base * gamma^floor(s / every)
///   cosine      base * (1 + cos(pi * s / length)) / 2, reaching 0 at s = length and staying there
/// Any of them may follow a linear warm-up of w steps, rising from 0 at step 0 to base at
/// step w; the schedule's own step s then counts from the end of the warm-up.

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "autodiff/error.hpp"

namespace nn {

enum class Schedule { constant, step, cosine };

inline Schedule schedule_from_string(const std::string& name) {
    if (name == "constant") return Schedule::constant;
    if (name == "step") return Schedule::step;
    if (name == "cosine") return Schedule::cosine;
    throw autodiff::Error("unknown schedule '" + name + "' (constant, step or cosine)");
}

class LearningRateSchedule {
public:
    static LearningRateSchedule constant(double base) { return LearningRateSchedule(Schedule::constant, base); }
    /// Multiplies the rate by gamma every `every` steps (torch.optim.lr_scheduler.StepLR).
    static LearningRateSchedule step(double base, std::size_t every, double gamma = 0.1) {
        if (every == 0) throw autodiff::Error("step schedule: 'every' must be at least 1 step");
        if (!(std::isfinite(gamma) && gamma >= 0)) throw autodiff::Error("step schedule: gamma must be finite and >= 0");
        LearningRateSchedule s(Schedule::step, base);
        s.every_ = every;
        s.gamma_ = gamma;
        return s;
    }
    /// Cosine annealing (Loshchilov & Hutter 2017) from base to 0 over `length` steps.
    static LearningRateSchedule cosine(double base, std::size_t length) {
        if (length == 0) throw autodiff::Error("cosine schedule: 'length' must be at least 1 step (0 would train at rate 0)");
        LearningRateSchedule s(Schedule::cosine, base);
        s.length_ = length;
        return s;
    }
    /// The same schedule after a linear warm-up of `steps` steps from 0.
    LearningRateSchedule with_warmup(std::size_t steps) const {
        LearningRateSchedule s = *this;
        s.warmup_ = steps;
        return s;
    }

    double at(std::size_t t) const {
        if (t < warmup_) return base_ * double(t) / double(warmup_);
        const std::size_t s = t - warmup_;
        switch (kind_) {
            case Schedule::constant: break;
            case Schedule::step: return base_ * std::pow(gamma_, double(s / every_));
            case Schedule::cosine: {
                if (s >= length_) return 0.0;
                const double pi = 3.14159265358979323846;
                return base_ * 0.5 * (1 + std::cos(pi * double(s) / double(length_)));
            }
        }
        return base_;
    }
    double base() const { return base_; }

private:
    LearningRateSchedule(Schedule kind, double base) : kind_(kind), base_(base) {
        if (!(std::isfinite(base) && base > 0))
            throw autodiff::Error("learning-rate schedule: the base rate must be a positive finite number");
    }
    Schedule kind_;
    double base_;
    std::size_t every_ = 1, length_ = 0, warmup_ = 0;
    double gamma_ = 0.1;
};

/// The per-epoch rate of train_mlp's schedules: cosine spans `epochs` epochs (its last
/// epoch still trains at a small positive rate), step divides by 10 every third of them.
inline double learning_rate_at(Schedule s, double base, std::size_t epoch, std::size_t epochs) {
    if (s == Schedule::constant || epochs == 0) return base;
    if (s == Schedule::step) return LearningRateSchedule::step(base, epochs / 3 + 1).at(epoch);
    return LearningRateSchedule::cosine(base, epochs).at(epoch);
}

}  // namespace nn
