#include "nn/non_finite.hpp"

namespace nn {
namespace {

[[noreturn]] void diverged(TrainingStep where, const std::string& what) {
    throw TrainingDiverged("training diverged at epoch " + std::to_string(where.epoch + 1) + ", batch " +
                           std::to_string(where.batch + 1) + ": " + what +
                           ". Try a lower learning rate (e.g. a tenth of it), or scale the input features to a "
                           "few units (features near the float range overflow); the last checkpoint saved is kept");
}

// "parameter <name> is not finite<when>: <where>" for the first parameter holding a NaN or an
// Inf, or "" if none does.
template <class T>
std::string first_non_finite_parameter(const std::vector<autodiff::Parameter<T>*>& parameters, const char* when) {
    autodiff::require_no_null_parameter("check_finite", parameters);
    for (const autodiff::Parameter<T>* p : parameters) {
        const std::string at = autodiff::first_non_finite(p->value);
        if (!at.empty())
            return "parameter " + (p->name.empty() ? std::string("(unnamed)") : p->name) + " is not finite" + when +
                   ": " + at;
    }
    return "";
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
    const std::string parameter = first_non_finite_parameter(parameters, " after the optimizer's step");
    if (!parameter.empty()) diverged(where, parameter);
}

template <class T>
void check_finite_parameters(const std::vector<autodiff::Parameter<T>*>& parameters, const std::string& who) {
    const std::string parameter = first_non_finite_parameter(parameters, "");
    if (!parameter.empty())
        throw TrainingDiverged(who + ": " + parameter + " (a weight given or assigned so: no training step makes one, "
                                                       "every step is checked)");
}

template <class T>
void check_finite_evaluation(double loss, const std::vector<autodiff::Parameter<T>*>& parameters) {
    if (std::isfinite(loss)) return;
    const std::string head = std::string("evaluation: the loss is not finite (") + (std::isnan(loss) ? "nan" : "inf") + ")";
    // A weight given or assigned non-finite (Linear(W, b) with a NaN in W) was reported as
    // "the model's weights are finite" (found by an attack): they are looked at first.
    check_finite_parameters(parameters, head);
    // Both causes named: with a learning rate of 1e20 the weights stay finite but huge, and
    // blaming the (small) features alone sent the user the wrong way (found by an attack).
    throw TrainingDiverged(head + ": the model's weights are finite, but the features times the weights overflow the "
                                  "number type: weights grown huge (a learning rate too high: lower it) or input "
                                  "features too large (scale them to a few units)");
}

template void check_finite_step<float>(double, const std::vector<autodiff::Parameter<float>*>&, TrainingStep);
template void check_finite_step<double>(double, const std::vector<autodiff::Parameter<double>*>&, TrainingStep);
template void check_finite_parameters<float>(const std::vector<autodiff::Parameter<float>*>&, const std::string&);
template void check_finite_parameters<double>(const std::vector<autodiff::Parameter<double>*>&, const std::string&);
template void check_finite_evaluation<float>(double, const std::vector<autodiff::Parameter<float>*>&);
template void check_finite_evaluation<double>(double, const std::vector<autodiff::Parameter<double>*>&);

}  // namespace nn
