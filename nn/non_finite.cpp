#include "nn/non_finite.hpp"

namespace nn {
namespace {

[[noreturn]] void diverged(TrainingStep where, const std::string& what) {
    throw TrainingDiverged("training diverged at epoch " + std::to_string(where.epoch + 1) + ", batch " +
                           std::to_string(where.batch + 1) + ": " + what +
                           ". Try a lower learning rate (e.g. a tenth of it), or scale the input features to a "
                           "few units (features near the float range overflow); the last checkpoint saved is kept");
}

}  // namespace

void check_finite_loss(double loss, TrainingStep where) {
    if (!std::isfinite(loss)) {
        diverged(where, std::string("the loss is not finite (") + (std::isnan(loss) ? "nan" : "inf") + ")");
    }
}

template <class T>
void check_finite_step(double loss, const std::vector<autodiff::Parameter<T>*>& parameters, TrainingStep where) {
    check_finite_loss(loss, where);
    for (const autodiff::Parameter<T>* p : parameters) {
        const std::string at = autodiff::first_non_finite(p->value);
        if (!at.empty()) {
            diverged(where, "parameter " + (p->name.empty() ? std::string("(unnamed)") : p->name) +
                                " is not finite after the optimizer's step: " + at);
        }
    }
}

void check_finite_evaluation(double loss) {
    if (!std::isfinite(loss)) {
        // Both causes named: with a learning rate of 1e20 the weights stay finite but huge, and
        // blaming the (small) features alone sent the user the wrong way (found by an attack).
        throw TrainingDiverged(std::string("evaluation: the loss is not finite (") + (std::isnan(loss) ? "nan" : "inf") +
                               "): the model's weights are finite, but the features times the weights overflow the "
                               "number type: weights grown huge (a learning rate too high: lower it) or input "
                               "features too large (scale them to a few units)");
    }
}

template void check_finite_step<float>(double, const std::vector<autodiff::Parameter<float>*>&, TrainingStep);
template void check_finite_step<double>(double, const std::vector<autodiff::Parameter<double>*>&, TrainingStep);

}  // namespace nn
