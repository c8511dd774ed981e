#pragma once
/// @file
/// Learning-rate schedules as pure functions of the epoch, so a resumed run picks up the
/// same rate it would have had.

#include <cmath>
#include <cstddef>
#include <string>

#include "autodiff/error.hpp"

namespace nn {

enum class Schedule { constant, cosine };

inline Schedule schedule_from_string(const std::string& name) {
    if (name == "constant") return Schedule::constant;
    if (name == "cosine") return Schedule::cosine;
    throw autodiff::Error("unknown schedule '" + name + "' (constant or cosine)");
}

/// Cosine annealing (Loshchilov & Hutter 2017) from base at epoch 0 towards 0 after the last epoch.
inline double learning_rate_at(Schedule s, double base, std::size_t epoch, std::size_t epochs) {
    if (s == Schedule::constant || epochs == 0) return base;
    const double pi = 3.14159265358979323846;
    return base * 0.5 * (1 + std::cos(pi * double(epoch) / double(epochs)));
}

}  // namespace nn
