#include "autodiff/tape.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>

namespace autodiff {

namespace {

// Generations are unique across all tapes, so a handle can never pass for one of another
// tape's, nor for one recorded on the same tape before a reset.
std::uint64_t next_generation() { return detail::TapeRegistry::next_generation(); }

template <class T>
void check_not_empty(const Matrix<T>& m, const char* op) {
    if (m.size() == 0)
        throw Error(std::string(op) + ": empty " + to_string(shape_of(m)) +
                    " matrix (every dimension must be at least 1)");
}

}  // namespace

// ---- Parameter ----

template <class T>
Parameter<T>::Parameter(Matrix<T> initial, std::string name_)
    : value(std::move(initial)), grad(xt::zeros<T>(value.shape())), name(std::move(name_)) {
    check_not_empty(value, ("parameter " + name).c_str());
}

template <class T>
void Parameter<T>::zero_grad() {
    ensure_shape(grad, shape());
    std::fill(grad.begin(), grad.end(), T(0));
}

// ---- Var ----

template <class T>
bool Var<T>::requires_grad() const {
    return tape().node(*this).requires_grad;
}

template <class T>
const Matrix<T>& Var<T>::grad() const {
    const Node<T>& n = tape().node(*this);
    if (n.parameter != nullptr && tape_->accumulate_into_parameters_) return n.parameter->grad;
    if (!n.grad_ready)
        throw Error(std::string("Var::grad: no gradient for this ") + n.op +
                    " entry (it is a constant, does not lead to the loss, or backward() was not called)");
    return n.grad;
}

// ---- Tape ----

template <class T>
Tape<T>::Tape() : slot_(detail::TapeRegistry::acquire()), generation_(next_generation()) {
    detail::TapeRegistry::generation(slot_).store(generation_, std::memory_order_release);
}

template <class T>
Tape<T>::~Tape() {
    detail::TapeRegistry::release(slot_);
}

template <class T>
void Tape<T>::reject(Var<T> v, const char* op) const {
    if (v.tape_ != this)
        throw Error(std::string(op) + ": the handle belongs to " +
                    (v.tape_ ? "another tape" : "no tape (default-constructed Var)"));
    throw Error(std::string(op) + ": stale handle: its tape was reset after it was recorded");
}

template <class T>
const Node<T>& Tape<T>::node(Var<T> v) const {
    check(v, "Tape::node");
    return nodes_[v.index_];
}

template <class T>
const Node<T>& Tape<T>::entry(std::size_t index) const {
    if (index >= size_)
        throw Error("Tape::entry: index " + std::to_string(index) + " but the tape holds " + std::to_string(size_) +
                    " entries");
    return nodes_[index];
}

template <class T>
Node<T>& Tape<T>::push(const char* op) {
    if (swept_) throw Error(std::string(op) + ": recording on a tape after backward(); call reset() first");
    if (size_ == nodes_.size()) nodes_.emplace_back();
    Node<T>& n = nodes_[size_++];
    n.op = op;
    n.arity = 0;
    n.backward = nullptr;
    n.forward = nullptr;
    n.scalar = T(0);
    n.scalar2 = T(0);
    n.params = {};
    n.parameter = nullptr;
    n.in_place = nullptr;
    n.requires_grad = false;
    n.grad_ready = false;
    return n;
}

// A leaf's value is its data (copied when recorded, or a parameter read in place): running
// its entry again, as a replay does, leaves it as it is.
namespace {
template <class T>
void leaf_forward(Tape<T>&, Node<T>&) {}
}  // namespace

template <class T>
Var<T> Tape<T>::constant(const Matrix<T>& value) {
    check_not_empty(value, "constant");
    return record_op("constant", {}, shape_of(value), leaf_forward<T>, nullptr,
                     [&](Node<T>& n) { std::copy(value.begin(), value.end(), n.value.begin()); });
}

template <class T>
Var<T> Tape<T>::constant_ref(const Matrix<T>& value) {
    check_not_empty(value, "constant_ref");
    Node<T>& n = push("constant_ref");
    n.forward = leaf_forward<T>;
    n.in_place = &value;
    n.parameter_shape = shape_of(value);
    if (detect_anomaly_) check_finite_value(static_cast<std::uint32_t>(size_ - 1));
    return handle(static_cast<std::uint32_t>(size_ - 1));
}

template <class T>
Var<T> Tape<T>::leaf(const Matrix<T>& value) {
    Var<T> v = constant(value);
    Node<T>& n = nodes_[v.index_];
    n.op = "leaf";
    n.requires_grad = grad_enabled_;
    return v;
}

template <class T>
Var<T> Tape<T>::parameter(Parameter<T>& p) {
    check_not_empty(p.value, "parameter");
    if (p.grad.shape() != p.value.shape()) p.zero_grad();  // value was replaced by another shape
    Node<T>& n = push("parameter");
    n.forward = leaf_forward<T>;
    n.parameter = &p;
    n.in_place = &p.value;
    n.parameter_shape = p.shape();
    n.requires_grad = grad_enabled_;
    if (detect_anomaly_) check_finite_value(static_cast<std::uint32_t>(size_ - 1));
    return handle(static_cast<std::uint32_t>(size_ - 1));
}

template <class T>
void Tape<T>::reset() {
    size_ = 0;
    swept_ = false;
    generation_ = next_generation();
    detail::TapeRegistry::generation(slot_).store(generation_, std::memory_order_release);
}

template <class T>
Matrix<T>& Tape<T>::grad_buffer(Node<T>& n) {
    return (n.parameter && accumulate_into_parameters_) ? n.parameter->grad : n.grad;
}

template <class T>
void Tape<T>::reject_input(const Node<T>& n, int i) {
    throw Error(std::string(n.op) + ": its backward asked for input " + std::to_string(i) + " but it has " +
                std::to_string(n.arity) + (n.arity == 1 ? " input" : " inputs"));
}

template <class T>
GradientSink<T> Tape<T>::grad_of(const Node<T>& n, int i) {
    Node<T>& in = nodes_[n.inputs[check_input(n, i)]];
    // Parameter::grad accumulates across sweeps, so it is always added to.
    const bool overwrite = !in.grad_ready && !(in.parameter && accumulate_into_parameters_);
    Matrix<T>& g = grad_buffer(in);
    if (overwrite) ensure_shape(g, shape_of(value(n.inputs[i])));
    in.grad_ready = true;
    return {g, overwrite};
}

template <class T>
void Tape<T>::backward(Var<T> output) {
    check(output, "backward");
    const Shape s = shape_of(value(output.index_));
    if (s != Shape{1, 1})
        throw Error("backward: the output is " + to_string(s) +
                    ", not 1x1: pass a seed of that shape (backward(output, seed))");
    start_backward(output).accumulate([](std::size_t) { return T(1); });
    sweep(output);
}

template <class T>
void Tape<T>::backward(Var<T> output, const Matrix<T>& seed) {
    check(output, "backward");
    if (shape_of(seed) != shape_of(value(output.index_)))
        throw Error("backward: seed is " + to_string(shape_of(seed)) + " but the output is " +
                    to_string(shape_of(value(output.index_))));
    const T* s = seed.data();
    start_backward(output).accumulate([s](std::size_t k) { return s[k]; });
    sweep(output);
}

template <class T>
GradientSink<T> Tape<T>::start_backward(Var<T> output) {
    if (swept_) throw Error("backward: this tape was already swept; reset() it and record again");
    Node<T>& out = nodes_[output.index_];
    if (!out.requires_grad)
        throw Error(std::string("backward: the output (") + out.op +
                    ") depends on no parameter or leaf that needs a gradient (recorded under NoGrad?)");
    for (std::size_t i = 0; i <= output.index_; ++i) {
        Node<T>& n = nodes_[i];
        n.grad_ready = false;
        check_in_place_shape(n, i, "backward");
    }
    const bool overwrite = !(out.parameter && accumulate_into_parameters_);
    Matrix<T>& g = grad_buffer(out);
    if (overwrite) ensure_shape(g, shape_of(value(output.index_)));
    out.grad_ready = true;
    return {g, overwrite};
}

template <class T>
void Tape<T>::check_in_place_shape(const Node<T>& n, std::size_t index, const char* op) const {
    // Ops read parameters and constant_refs in place: one resized since it was recorded
    // would make them read past the end of their buffers.
    if (n.in_place == nullptr || shape_of(*n.in_place) == n.parameter_shape) return;
    const std::string what = n.parameter ? "parameter '" + n.parameter->name + "'" : std::string("constant_ref");
    throw Error(std::string(op) + ": " + what + " was " + to_string(n.parameter_shape) + " when recorded (tape entry " +
                std::to_string(index) + ") and is " + to_string(shape_of(*n.in_place)) + " now");
}

template <class T>
void Tape<T>::sweep(Var<T> output) {
    // Swept even if an op's backward throws half way: parameters may already hold part of
    // the gradients, and a second sweep would add them twice.
    swept_ = true;
    const bool hooked = ready_hook_ != nullptr && accumulate_into_parameters_;
    if (hooked) find_final_leaves(output.index_);
    std::size_t next_final = 0;
    // Recording order is a topological order: walking it backwards visits every entry
    // after all the entries that consume it.
    for (std::size_t i = output.index_ + 1; i-- > 0;) {
        Node<T>& n = nodes_[i];
        // Only later entries add to a leaf: reaching it, its gradient is whole.
        if (hooked && next_final < final_leaves_.size() && final_leaves_[next_final].second == i)
            ready_hook_(ready_context_, *nodes_[final_leaves_[next_final++].second].parameter);
        if (n.backward == nullptr || !n.grad_ready) continue;
        n.backward(*this, n);
        if (detect_anomaly_) check_finite_input_grads(n, static_cast<std::uint32_t>(i));
    }
}

template <class T>
void Tape<T>::find_final_leaves(std::uint32_t output) {
    final_leaves_.clear();
    for (std::uint32_t i = 0; i <= output; ++i)
        if (nodes_[i].parameter) final_leaves_.emplace_back(nodes_[i].parameter, i);
    // Per parameter keep the earliest leaf (sorted by parameter, then index), then order
    // the survivors as the sweep meets them: highest index first.
    std::sort(final_leaves_.begin(), final_leaves_.end(), [](const auto& a, const auto& b) {
        return std::less<const Parameter<T>*>()(a.first, b.first) || (a.first == b.first && a.second < b.second);
    });
    final_leaves_.erase(std::unique(final_leaves_.begin(), final_leaves_.end(),
                                    [](const auto& a, const auto& b) { return a.first == b.first; }),
                        final_leaves_.end());
    std::sort(final_leaves_.begin(), final_leaves_.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
}

template <class T>
Matrix<T> Tape<T>::gradient_of(const Parameter<T>& p) const {
    Matrix<T> total = xt::zeros<T>(p.value.shape());
    for (std::size_t i = 0; i < size_; ++i) {
        const Node<T>& n = nodes_[i];
        if (n.parameter != &p || !n.grad_ready) continue;
        const Matrix<T>& g = (accumulate_into_parameters_) ? p.grad : n.grad;
        total += g;
        if (accumulate_into_parameters_) break;  // p.grad already holds the sum
    }
    return total;
}

template <class T>
void Tape<T>::check_finite_value(std::uint32_t index) const {
    const Matrix<T>& v = value(index);
    const std::string where = first_non_finite(v);
    if (where.empty()) return;
    const Node<T>& n = nodes_[index];
    const std::string entry = "tape entry " + std::to_string(index);
    if (n.arity == 0) {  // a constant, leaf or parameter: the data given, not an op, is at fault
        // leaf() is a constant() that needs a gradient: both are checked before leaf() names it.
        const std::string what = n.parameter ? "parameter '" + n.parameter->name + "'" : "a constant or leaf";
        throw AnomalyError("anomaly: input data (" + what + ", " + entry + ") holds a NaN or Inf value: " + where +
                           " of " + to_string(shape_of(v)));
    }
    std::string inputs;
    for (int i = 0; i < n.arity; ++i) inputs += (i ? ", " : "") + to_string(shape_of(value(n.inputs[i])));
    throw AnomalyError("anomaly: " + std::string(n.op) + " (" + entry + ", inputs " + inputs +
                       ") produced a NaN or Inf value: " + where + " of " + to_string(shape_of(v)));
}

template <class T>
void Tape<T>::check_finite_input_grads(const Node<T>& n, std::uint32_t index) const {
    for (int i = 0; i < n.arity; ++i) {
        const Node<T>& in = nodes_[n.inputs[i]];
        if (!in.requires_grad) continue;
        const Matrix<T>& g = (in.parameter && accumulate_into_parameters_) ? in.parameter->grad : in.grad;
        const std::string where = first_non_finite(g);
        if (!where.empty())
            throw AnomalyError("anomaly: the backward of " + std::string(n.op) + " (tape entry " +
                               std::to_string(index) + ") produced a NaN or Inf gradient for its input " +
                               std::to_string(i) + " (" + in.op + ", " + to_string(shape_of(value(n.inputs[i]))) +
                               "): " + where);
    }
}

template class Parameter<float>;
template class Parameter<double>;
template class Var<float>;
template class Var<double>;
template class Tape<float>;
template class Tape<double>;

}  // namespace autodiff
