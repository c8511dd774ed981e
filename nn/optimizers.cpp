#include "nn/optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "autodiff/error.hpp"
#include "nn/adam_update.hpp"

namespace nn {

using autodiff::Matrix;
using autodiff::Parameter;

namespace {

// Rates must be finite and positive; momentum and betas lie in [0, 1).
template <class T>
T require_rate(const char* optimizer, const char* what, T value) {
    if (!std::isfinite(value) || value <= T(0)) {
        std::ostringstream msg;
        msg << optimizer << ": " << what << " must be a positive finite number, got " << value;
        throw autodiff::Error(msg.str());
    }
    return value;
}

template <class T>
T require_nonnegative(const char* optimizer, const char* what, T value) {
    if (!std::isfinite(value) || value < T(0)) {
        std::ostringstream msg;
        msg << optimizer << ": " << what << " must be a finite number >= 0, got " << value;
        throw autodiff::Error(msg.str());
    }
    return value;
}

template <class T>
T require_fraction(const char* optimizer, const char* what, T value) {
    if (!(value >= T(0) && value < T(1))) {
        std::ostringstream msg;
        msg << optimizer << ": " << what << " must be in [0, 1), got " << value;
        throw autodiff::Error(msg.str());
    }
    return value;
}

template <class T>
std::string text(T value) {
    std::ostringstream out;
    out.precision(17);
    out << value;
    return out.str();
}

template <class T>
std::vector<Matrix<T>> zeros_like(const std::vector<Parameter<T>*>& parameters) {
    std::vector<Matrix<T>> out;
    for (const Parameter<T>* p : parameters) out.push_back(xt::zeros<T>(p->value.shape()));
    return out;
}

// The state's name for the i-th array under `key`: "m.0", "velocity.3".
std::string state_name(const std::string& key, std::size_t i) { return key + "." + std::to_string(i); }

// The names of `count` arrays under `key`.
std::set<std::string> state_names(const std::string& key, std::size_t count) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < count; ++i) names.insert(state_name(key, i));
    return names;
}

// Throws unless `state` holds exactly the arrays named `expected`, naming the first missing
// or extra one: state for other parameters would otherwise be dropped or half-loaded.
template <class T>
void require_names(const std::string& optimizer, const std::map<std::string, Matrix<T>>& state,
                   const std::set<std::string>& expected) {
    for (const std::string& name : expected)
        if (state.count(name) == 0) throw autodiff::Error(optimizer + ": state has no '" + name + "'");
    for (const auto& entry : state)
        if (expected.count(entry.first) == 0)
            throw autodiff::Error(optimizer + ": state has '" + entry.first +
                                  "', which this optimizer does not keep (saved for other parameters?)");
}

// Copies of the arrays under `key` (a parameter's `what`: "velocity"), each checked to have
// the shape of its parameter as it is now and to be finite. Not the shape of the state it
// replaces: after a parameter was resized by hand, state of its new shape was refused, the
// message calling the parameter the old shape, and state of the old shape was taken, for the
// next step to refuse (found by an attack). A checkpoint holds no number that is not finite
// (save_checkpoint refuses one), but a caller of load_state can give one, and a NaN moment
// made its weight NaN at the next step. The caller swaps the copies in once everything is
// checked, so that a failure leaves the optimizer as it was.
template <class T>
std::vector<Matrix<T>> checked_copies(const Optimizer<T>& optimizer, const std::map<std::string, Matrix<T>>& state,
                                      const std::string& key, const char* what) {
    optimizer.require_parameters_alive();
    const std::vector<Parameter<T>*>& parameters = optimizer.parameters();
    std::vector<Matrix<T>> copies;
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        const Matrix<T>& saved = state.at(state_name(key, i));
        if (autodiff::shape_of(saved) != parameters[i]->shape())
            throw autodiff::Error(optimizer.name() + ": state '" + state_name(key, i) + "' is " +
                                  autodiff::to_string(autodiff::shape_of(saved)) + " but its parameter '" +
                                  parameters[i]->name + "' is " + autodiff::to_string(parameters[i]->shape()));
        const std::string not_finite = autodiff::first_non_finite(saved);
        if (!not_finite.empty())
            throw autodiff::Error(optimizer.name() + ": state '" + state_name(key, i) + "' holds " + not_finite + " (the " +
                                  what + " of parameter " + std::to_string(i) + " must be finite)");
        copies.push_back(saved);
    }
    return copies;
}

template <class T>
void save(std::map<std::string, Matrix<T>>& state, const std::string& key, const std::vector<Matrix<T>>& arrays) {
    for (std::size_t i = 0; i < arrays.size(); ++i) state[state_name(key, i)] = arrays[i];
}

// The step count a state holds, as one whole number >= 0.
template <class T>
std::uint64_t whole_steps(const std::string& optimizer, const Matrix<T>& saved) {
    if (saved.size() != 1) throw autodiff::Error(optimizer + ": state 'steps' must hold one number");
    const T steps = saved(0, 0);
    if (!(steps >= T(0) && steps < T(1e15) && steps == std::floor(steps)))
        throw autodiff::Error(optimizer + ": state 'steps' must be a whole number of steps, got " + text(steps));
    return static_cast<std::uint64_t>(steps);
}

// A parameter resized after the optimizer was made would be updated past the end of its
// gradient or state buffers.
template <class T>
void require_shape(const Optimizer<T>& optimizer, const Parameter<T>& p, const Matrix<T>& other, const char* what) {
    // Compared as two numbers, the name made only for the message: every step asks this of
    // every parameter (xtensor's shape comparison is a memcmp call; with the name built first,
    // the S step's checks took ~260 instructions).
    if (autodiff::shape_of(other) != p.shape())
        throw autodiff::Error(optimizer.name() + ": parameter '" + p.name + "' is " + autodiff::to_string(p.shape()) +
                              " but its " + what + " is " + autodiff::to_string(autodiff::shape_of(other)));
}

template <class T>
using StateArrays = std::initializer_list<std::pair<const std::vector<Matrix<T>>*, const char*>>;

// Before a step changes anything: every gradient, and every state array listed, has its
// parameter's shape (one resized since would be read past its end). All checked first, so
// that a step that throws leaves every weight, gradient and state as it was.
template <class T>
void require_shapes_before_step(const Optimizer<T>& optimizer, const std::vector<Parameter<T>*>& parameters,
                                StateArrays<T> states = {}) {
    optimizer.require_parameters_alive();
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        require_shape(optimizer, *parameters[i], parameters[i]->grad, "gradient");
        for (const auto& [arrays, what] : states) require_shape(optimizer, *parameters[i], (*arrays)[i], what);
    }
}

// Before state() gives its arrays: each has its parameter's shape. State of a parameter
// resized since was saved by nn::save over a good checkpoint, which no load then took back
// ("state 'm.0' is 2x2 but its parameter 'W' is 3x2"; found by an attack).
template <class T>
void require_state_shapes(const Optimizer<T>& optimizer, const std::vector<Parameter<T>*>& parameters,
                          StateArrays<T> states) {
    optimizer.require_parameters_alive();
    for (std::size_t i = 0; i < parameters.size(); ++i)
        for (const auto& [arrays, what] : states) require_shape(optimizer, *parameters[i], (*arrays)[i], what);
}

// kernel(w, n) changes a parameter's flat storage in place (its shapes checked before the step).
template <class T, class Kernel>
void update_in_place(Parameter<T>& p, Kernel&& kernel) {
    kernel(p.value.data(), p.value.size());
    p.bump_version();  // a tape that recorded p before this update refuses to backward through it
}

// p[k] -= delta(k) over a parameter's flat storage (vectorised when delta reads only
// locals and the arrays).
template <class T, class F>
void update(Parameter<T>& p, F&& delta) {
    update_in_place(p, [&](T* w, std::size_t n) {
        for (std::size_t k = 0; k < n; ++k) w[k] -= delta(k);
    });
}

// w -= rate * (g + decay * w) over one parameter's flat storage. For step_and_zero_grad
// (fused) the same pass zeroes g (zero_grad() without a pass of its own) and checks every
// new w finite (returned; no early exit, so that the loop vectorises); step() does neither,
// as before. A loop per case rather than a test per number: without decay the notebook's
// update, w -= rate * g, is exact.
template <class T, bool decayed, bool fused>
bool sgd_loop(std::size_t n, T* __restrict w, T* __restrict g, T rate, T decay) {
    const T largest = std::numeric_limits<T>::max();
    // A flag as wide as T: an unsigned one made GCC pack each vector of comparisons into it
    // (the S workload's update took 1,504 instructions instead of 1,358, callgrind).
    using Flag = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
    Flag not_finite = 0;
    for (std::size_t k = 0; k < n; ++k) {
        w[k] -= decayed ? rate * (g[k] + decay * w[k]) : rate * g[k];
        if constexpr (fused) {
            not_finite |= Flag(!(std::abs(w[k]) <= largest));
            g[k] = T(0);
        }
    }
    return fused && not_finite == 0;
}

template <class T>
bool sgd_update(std::size_t n, T* w, T* g, T rate, T decay, bool fused) {
    if (decay == T(0))
        return fused ? sgd_loop<T, false, true>(n, w, g, rate, decay) : sgd_loop<T, false, false>(n, w, g, rate, decay);
    return fused ? sgd_loop<T, true, true>(n, w, g, rate, decay) : sgd_loop<T, true, false>(n, w, g, rate, decay);
}

}  // namespace

template <class T>
Optimizer<T>::Optimizer(std::vector<Parameter<T>*> parameters, T learning_rate)
    : parameters_(std::move(parameters)), learning_rate_(learning_rate), listed_(parameters_) {
    // Every step and every state array dereferences each entry. (name() is not callable yet:
    // the derived optimizer is not constructed.)
    autodiff::require_no_null_parameter("optimizer", parameters_);
    distinct_ = std::set<const Parameter<T>*>(parameters_.begin(), parameters_.end()).size() == parameters_.size();
}

// The message is built by a cold function (ListedParameters::first_gone says why).
template <class T>
void Optimizer<T>::require_parameters_alive() const {
    const std::size_t gone = listed_.first_gone();
    if (gone != ListedParameters<T>::none) reject_dead_parameter(gone);
}

template <class T>
void Optimizer<T>::reject_dead_parameter(std::size_t i) const {
    throw autodiff::Error(name() + ": parameter " + std::to_string(i) + " of " + std::to_string(listed_.size()) +
                          " was destroyed or moved from after the optimizer was made; the parameters must "
                          "outlive the optimizer and stay where they are");
}

template <class T>
void Optimizer<T>::set_learning_rate(T rate) {
    learning_rate_ = require_nonnegative(name().c_str(), "learning rate", rate);
}

template <class T>
void Optimizer<T>::zero_grad() {
    require_parameters_alive();
    for (Parameter<T>* p : parameters_) p->zero_grad();
}

template <class T>
bool Optimizer<T>::step_and_zero_grad() {
    step();
    zero_grad();
    return false;
}

template <class T>
void Optimizer<T>::load_state(const std::map<std::string, Matrix<T>>& state) {
    if (!state.empty()) throw autodiff::Error(name() + ": this optimizer keeps no state, but some was given");
}

// ---- SGD ----

template <class T>
SGD<T>::SGD(std::vector<Parameter<T>*> parameters, T learning_rate, T weight_decay)
    : Optimizer<T>(std::move(parameters), require_rate("SGD", "learning rate", learning_rate)),
      weight_decay_(require_nonnegative("SGD", "weight decay", weight_decay)) {}

template <class T>
void SGD<T>::step() {
    update(false);
}

template <class T>
bool SGD<T>::step_and_zero_grad() {
    return this->step_zeroing_in_pass([this] { return update(true); });
}

// The hyperparameters are copied to locals before the loop: read through `this`, they
// might alias the parameter the loop writes, so the compiler would reload them per element
// and not vectorise the loop (as Adam's was, when it took as long as the step's GEMMs).
template <class T>
bool SGD<T>::update(bool fused) {
    require_shapes_before_step(*this, this->parameters_);
    const T rate = this->learning_rate_, decay = weight_decay_;
    bool finite = true;
    for (Parameter<T>* p : this->parameters_) {
        T* g = p->grad.data();
        update_in_place(*p, [&](T* w, std::size_t n) { finite = sgd_update(n, w, g, rate, decay, fused) && finite; });
    }
    return finite;
}

template <class T>
std::map<std::string, std::string> SGD<T>::hyperparameters() const {
    return {{"learning_rate", text(this->learning_rate_)}, {"weight_decay", text(weight_decay_)}};
}

// ---- Momentum ----

template <class T>
Momentum<T>::Momentum(std::vector<Parameter<T>*> parameters, T learning_rate, T momentum, T weight_decay)
    : Optimizer<T>(std::move(parameters), require_rate("Momentum", "learning rate", learning_rate)),
      momentum_(require_fraction("Momentum", "momentum", momentum)),
      weight_decay_(require_nonnegative("Momentum", "weight decay", weight_decay)),
      velocity_(zeros_like(this->parameters_)) {}

template <class T>
void Momentum<T>::step() {
    require_shapes_before_step(*this, this->parameters_, {{&velocity_, "velocity"}});
    const T rate = this->learning_rate_, momentum = momentum_, decay = weight_decay_;  // locals: see SGD::update
    for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
        const T* g = this->parameters_[i]->grad.data();
        const T* w = this->parameters_[i]->value.data();
        T* v = velocity_[i].data();
        update(*this->parameters_[i], [&](std::size_t k) {
            v[k] = momentum * v[k] + (g[k] + decay * w[k]);
            return rate * v[k];
        });
    }
}

template <class T>
std::map<std::string, std::string> Momentum<T>::hyperparameters() const {
    return {{"learning_rate", text(this->learning_rate_)}, {"momentum", text(momentum_)},
            {"weight_decay", text(weight_decay_)}};
}

template <class T>
std::map<std::string, Matrix<T>> Momentum<T>::state() const {
    require_state_shapes(*this, this->parameters_, {{&velocity_, "velocity"}});
    std::map<std::string, Matrix<T>> s;
    save(s, "velocity", velocity_);
    return s;
}

template <class T>
void Momentum<T>::load_state(const std::map<std::string, Matrix<T>>& state) {
    require_names(name(), state, state_names("velocity", velocity_.size()));
    std::vector<Matrix<T>> velocity = checked_copies(*this, state, "velocity", "velocity");
    velocity_.swap(velocity);
}

// ---- Adam ----

template <class T>
Adam<T>::Adam(std::vector<Parameter<T>*> parameters, T learning_rate, T beta1, T beta2, T epsilon, T weight_decay)
    : Optimizer<T>(std::move(parameters), require_rate("Adam", "learning rate", learning_rate)),
      beta1_(require_fraction("Adam", "beta1", beta1)),
      beta2_(require_fraction("Adam", "beta2", beta2)),
      epsilon_(require_rate("Adam", "epsilon", epsilon)),
      weight_decay_(require_nonnegative("Adam", "weight decay", weight_decay)),
      m_(zeros_like(this->parameters_)),
      v_(zeros_like(this->parameters_)) {}

template <class T>
Adam<T>::Adam(Decoupled, std::vector<Parameter<T>*> parameters, T learning_rate, T weight_decay, T beta1, T beta2,
              T epsilon)
    : Adam(std::move(parameters), learning_rate, beta1, beta2, epsilon, T(0)) {
    weight_decay_ = require_nonnegative("AdamW", "weight decay", weight_decay);
    decoupled_ = true;
}

template <class T>
void Adam<T>::step() {
    update(false);
}

template <class T>
bool Adam<T>::step_and_zero_grad() {
    return this->step_zeroing_in_pass([this] { return update(true); });
}

template <class T>
bool Adam<T>::update(bool zero_gradient) {
    require_shapes_before_step(*this, this->parameters_, {{&m_, "first moment"}, {&v_, "second moment"}});
    ++steps_;
    const T correction1 = T(1) - std::pow(beta1_, T(steps_));
    const T correction2 = T(1) - std::pow(beta2_, T(steps_));
    const T root_correction2 = std::sqrt(correction2);
    // L2 (Adam) folds the decay into the gradient; decoupled (AdamW) shrinks W apart from
    // the adaptive step. Zero decay makes both the plain Adam update. The loop itself is
    // detail::adam_update, compiled for the CPU's vector width (nn/adam_update.cpp).
    const detail::AdamConstants<T> c{beta1_,
                                     beta2_,
                                     epsilon_,
                                     decoupled_ ? T(0) : weight_decay_,
                                     decoupled_ ? this->learning_rate_ * weight_decay_ : T(0),
                                     this->learning_rate_ / correction1,
                                     root_correction2,
                                     detail::flush_below(epsilon_, root_correction2)};
    bool finite = true;
    for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
        Parameter<T>& p = *this->parameters_[i];
        update_in_place(p, [&](T* w, std::size_t n) {
            finite = detail::adam_update(n, w, m_[i].data(), v_[i].data(), p.grad.data(), c, zero_gradient) && finite;
        });
    }
    return finite;
}

template <class T>
std::map<std::string, std::string> Adam<T>::hyperparameters() const {
    return {{"learning_rate", text(this->learning_rate_)}, {"beta1", text(beta1_)}, {"beta2", text(beta2_)},
            {"epsilon", text(epsilon_)}, {"weight_decay", text(weight_decay_)}};
}

template <class T>
std::map<std::string, Matrix<T>> Adam<T>::state() const {
    require_state_shapes(*this, this->parameters_, {{&m_, "first moment"}, {&v_, "second moment"}});
    std::map<std::string, Matrix<T>> s;
    save(s, "m", m_);
    save(s, "v", v_);
    s["steps"] = Matrix<T>({{T(steps_)}});
    return s;
}

// Everything is checked and copied before anything is assigned: a state that does not fit
// leaves the optimizer as it was.
template <class T>
void Adam<T>::load_state(const std::map<std::string, Matrix<T>>& state) {
    std::set<std::string> expected = state_names("m", m_.size());
    expected.merge(state_names("v", v_.size()));
    expected.insert("steps");
    require_names(name(), state, expected);
    std::vector<Matrix<T>> m = checked_copies(*this, state, "m", "first moment");
    std::vector<Matrix<T>> v = checked_copies(*this, state, "v", "second moment");
    const std::uint64_t steps = whole_steps(name(), state.at("steps"));
    // A mean of squares: a negative one (a finite, well-formed file) made the next step divide
    // by epsilon and throw the weights thousands away (found by an attack).
    for (std::size_t i = 0; i < v.size(); ++i)
        for (std::size_t k = 0; k < v[i].size(); ++k)
            if (!(v[i].data()[k] >= T(0)))
                throw autodiff::Error(name() + ": state '" + state_name("v", i) + "' holds " + text(v[i].data()[k]) +
                                      " at element " + std::to_string(k) + " (a second moment is never negative)");
    m_.swap(m);
    v_.swap(v);
    steps_ = steps;
}

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name, std::vector<Parameter<T>*> parameters,
                                             T learning_rate, T momentum, T weight_decay) {
    if (name == "sgd") return std::make_unique<SGD<T>>(std::move(parameters), learning_rate, weight_decay);
    if (name == "momentum")
        return std::make_unique<Momentum<T>>(std::move(parameters), learning_rate, momentum, weight_decay);
    if (name == "adam")
        return std::make_unique<Adam<T>>(std::move(parameters), learning_rate, T(0.9), T(0.999), T(1e-8), weight_decay);
    if (name == "adamw") return std::make_unique<AdamW<T>>(std::move(parameters), learning_rate, weight_decay);
    throw autodiff::Error("unknown optimizer '" + name + "' (sgd, momentum, adam or adamw)");
}

namespace {

// The L2 norm of every gradient, in double. Squares of gradients past 1e154 overflow a double,
// and those below 1e-154 lose their digits or vanish (found by an attack: gradients of 1e200,
// a norm of 2e200, were refused as an overflow, and those of 1e-200 had a norm of 0): then the
// sum is taken again over the gradients divided by the largest. Not finite if one is not.
template <class T>
double gradient_norm(const std::vector<Parameter<T>*>& parameters) {
    double squares = 0;
    for (const Parameter<T>* p : parameters)
        for (const T g : p->grad) squares += double(g) * double(g);
    const double exact_above = std::numeric_limits<double>::min() / std::numeric_limits<double>::epsilon();
    if (std::isfinite(squares) && squares >= exact_above) return std::sqrt(squares);
    double largest = 0;
    for (const Parameter<T>* p : parameters)
        for (const T g : p->grad) largest = std::max(largest, std::abs(double(g)));
    if (largest == 0 || !std::isfinite(largest)) return std::sqrt(squares);  // all 0, or an infinity
    double scaled = 0;
    for (const Parameter<T>* p : parameters)
        for (const T g : p->grad) scaled += (double(g) / largest) * (double(g) / largest);
    return largest * std::sqrt(scaled);
}

// The parameters, each once, in their order: the list itself when it holds none twice (the
// usual case). Duplicates are found on a sorted copy kept per thread, and each parameter's
// first listing is found there by binary search, so that the Trainer's clipped step allocates
// nothing after the first, duplicates or not.
template <class T>
const std::vector<Parameter<T>*>& each_once(const std::vector<Parameter<T>*>& parameters) {
    thread_local std::vector<Parameter<T>*> sorted, distinct;
    thread_local std::vector<char> listed;
    const std::less<Parameter<T>*> before;
    sorted.assign(parameters.begin(), parameters.end());
    std::sort(sorted.begin(), sorted.end(), before);
    if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) return parameters;
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    listed.assign(sorted.size(), 0);
    distinct.clear();
    for (Parameter<T>* p : parameters) {
        char& seen = listed[std::lower_bound(sorted.begin(), sorted.end(), p, before) - sorted.begin()];
        if (!seen) distinct.push_back(p);
        seen = 1;
    }
    return distinct;
}

}  // namespace

template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& parameters, double max_norm) {
    if (!(std::isfinite(max_norm) && max_norm > 0))
        throw autodiff::Error("clip_grad_norm: max_norm must be a positive finite number, got " + text(max_norm));
    autodiff::require_no_null_parameter("clip_grad_norm", parameters);
    // Each parameter once: one listed twice (as an optimizer may take it) counted its gradient
    // twice in the norm and was scaled twice, so a gradient of norm 5 clipped to 1 came out
    // of norm 0.1, without a word (found by an attack).
    const std::vector<Parameter<T>*>& distinct = each_once(parameters);
    const double norm = gradient_norm(distinct);
    if (!std::isfinite(norm)) {
        for (const Parameter<T>* p : distinct)
            for (const T g : p->grad)
                if (!std::isfinite(g))
                    throw autodiff::Error("clip_grad_norm: the gradient of '" + p->name + "' holds " + text(g) +
                                          ": the total norm is not finite");
        throw autodiff::Error("clip_grad_norm: the total gradient norm overflows (" + text(norm) + ")");
    }
    if (norm > max_norm) {
        const T factor = T(max_norm / (norm + 1e-6));
        for (Parameter<T>* p : distinct) p->grad *= factor;
    }
    return norm;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                              \
    template class Optimizer<T>;                                                                             \
    template class SGD<T>;                                                                                   \
    template class Momentum<T>;                                                                              \
    template class Adam<T>;                                                                                  \
    template class AdamW<T>;                                                                                 \
    template double clip_grad_norm<T>(const std::vector<Parameter<T>*>&, double);                            \
    template std::unique_ptr<Optimizer<T>> make_optimizer<T>(const std::string&, std::vector<Parameter<T>*>, \
                                                             T, T, T);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace nn
