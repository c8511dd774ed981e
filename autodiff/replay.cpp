#include "autodiff/replay.hpp"

#include <cstring>

#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// Entries whose recording draws fresh random numbers (and advances the caller's generator):
// run again, they would repeat the recorded draw instead of making a new one.
bool draws_random_numbers(const char* op) { return std::strcmp(op, "dropout") == 0; }

}  // namespace

template <class T>
Replay<T>::Replay(Tape<T>& tape, const Var<T>& output)
    : tape_(tape), output_(output), generation_(tape.generation_), size_(tape.size_) {
    typename Tape<T>::ExclusiveUse one_thread(tape, "Replay");
    tape.check(output, "Replay");
    plan_.step_of.assign(size_, -1);
    std::pair<ForwardFn<T>, FlatKernels<T>> last{nullptr, {}};  // entries of one op come in runs: looked up once
    for (std::size_t i = 0; i < size_; ++i) {
        const Node<T>& n = tape.nodes_[i];
        // Entries recorded under NoGrad that no entry of the step reads (pinned marks those
        // one does) are not part of the step: released ones may be reused for anything.
        if (!(tape.refs_[i] & Tape<T>::pinned)) continue;
        if (n.recorded_under_nograd && n.arity > 0)
            throw Error("Replay: tape entry " + std::to_string(i) + " (" + n.op +
                        ") was computed under NoGrad and the step reads it: a replay can neither compute it again "
                        "(its inputs were not kept: released under NoGrad, they may hold other values now) nor "
                        "keep its value (it would go stale); record it with gradients enabled (an entry whose "
                        "inputs need no gradient gets no backward), or pass its value in with constant_ref");
        if (n.forward == nullptr)
            throw Error("Replay: tape entry " + std::to_string(i) + " (" + n.op +
                        ") cannot run again: it was recorded by Tape::record with a lambda (custom ops made with "
                        "apply() are); record it with Tape::record_op, or record the step afresh each time");
        if (draws_random_numbers(n.op))
            throw Error("Replay: tape entry " + std::to_string(i) + " (" + n.op +
                        ") draws new random numbers each time it is recorded; a replay would repeat the recorded "
                        "draw, so record the step afresh each time");
        if (n.in_place != nullptr) in_place_.push_back(static_cast<std::uint32_t>(i));
        if (n.in_place == nullptr && n.arity == 0) leaves_.push_back(static_cast<std::uint32_t>(i));
        if (n.arity == 0) continue;
        computed_.push_back(static_cast<std::uint32_t>(i));
        if (last.first != n.forward) last = {n.forward, detail::flat_kernels_of(n.forward)};
        if (last.second.forward != nullptr) plan_flat_step(static_cast<std::uint32_t>(i), last.second);
    }
}

// An entry of an op with flat kernels whose inputs have its shape: its buffers' addresses,
// which stay put while the tape is neither reset nor recorded on (check_unchanged), except
// those of leaves, looked up again on each run. Gradients are sized now, so that a flat
// step can write into them (the entry's own sized as its backward would size them).
template <class T>
void Replay<T>::plan_flat_step(std::uint32_t index, FlatKernels<T> kernels) {
    Node<T>& n = tape_.nodes_[index];
    if (n.arity > 2) return;
    for (std::uint8_t k = 0; k < n.arity; ++k)
        if (tape_.value(n.inputs[k]).size() != n.value.size()) return;  // broadcast: the entry's own code
    FlatStep<T> step;
    const auto at = static_cast<std::uint32_t>(plan_.steps.size());
    step.kernels = kernels;
    step.arity = n.arity;
    step.n = n.value.size();
    step.s = n.scalar;
    step.s2 = n.scalar2;
    step.y = n.value.data();
    if (n.requires_grad) {
        ensure_shape(n.grad, shape_of(n.value));
        step.gy = n.grad.data();
    }
    for (std::uint32_t k = 0; k < n.arity; ++k) {
        Node<T>& in = tape_.nodes_[n.inputs[k]];
        step.input[k] = n.inputs[k];
        if (in.parameter != nullptr) step.parameters |= std::uint8_t(1u << k);
        if (in.in_place != nullptr)
            plan_.in_place_values.push_back({at, k, n.inputs[k]});
        else
            step.x[k] = in.value.data();
        if (!n.requires_grad || !in.requires_grad) continue;
        if (in.arity == 0) {
            plan_.leaf_grads.push_back({at, k, n.inputs[k]});
        } else {
            ensure_shape(in.grad, shape_of(in.value));
            step.gx[k] = in.grad.data();
        }
    }
    plan_.steps.push_back(step);
    plan_.step_of[index] = static_cast<std::int32_t>(at);
}

template <class T>
void Replay<T>::check_unchanged(const char* op) const {
    if (tape_.generation_ != generation_ || tape_.size_ != size_)
        throw Error(std::string(op) + ": the tape was " + (tape_.generation_ != generation_ ? "reset" : "recorded on") +
                    " after this step was recorded; record the step again and make a new Replay");
}

template <class T>
void Replay<T>::forward() {
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::forward");
    forward_locked();
}

template <class T>
void Replay<T>::forward_locked() {
    check_unchanged("Replay::forward");
    // Each entry's gradient flag is cleared here, in the order the entries run, for the sweep
    // that follows (a pass of its own would walk a tape larger than the cache once more).
    for (std::uint32_t i : in_place_) {
        tape_.rerecord_in_place(i);  // alive, same shape; its version read again
        tape_.refs_[i] &= ~Tape<T>::started;
        if (tape_.detect_anomaly_) tape_.check_finite_value(i);
    }
    for (std::uint32_t i : leaves_) tape_.refs_[i] &= ~Tape<T>::started;
    for (const auto& leaf : plan_.in_place_values) plan_.steps[leaf.step].x[leaf.side] = tape_.value(leaf.leaf).data();
    for (std::uint32_t i : computed_) {
        tape_.refs_[i] &= ~Tape<T>::started;
        const std::int32_t flat = plan_.step_of[i];
        if (flat >= 0) {
            plan_.steps[flat].kernels.forward(plan_.steps[flat]);  // its entry is not read
        } else {
            Node<T>& n = tape_.nodes_[i];
            n.forward(tape_, n);
        }
        if (tape_.detect_anomaly_) tape_.check_finite_value(i);
    }
}

// Locked from the forward to the value read after the sweep: another thread cannot come
// between them (nor change the values the sweep reads).
template <class T>
T Replay<T>::run() {
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::run");
    forward_locked();
    tape_.swept_ = false;
    tape_.backward_from_scalar(output_, &plan_);
    return tape_.value(output_.index())(0, 0);
}

template <class T>
Node<T>& Replay<T>::loss_entry(const Var<T>& loss, bool with_labels) {
    const char* op = with_labels ? "Replay::set_labels" : "Replay::set_targets";
    check_unchanged(op);  // the caller holds the tape
    tape_.check(loss, op);
    Node<T>& n = tape_.nodes_[loss.index()];
    if (std::strcmp(n.op, "softmax_cross_entropy") != 0)
        throw Error(std::string(op) + ": tape entry " + std::to_string(loss.index()) + " is " + n.op +
                    ", not softmax_cross_entropy");
    if (n.labels().empty() == with_labels)
        throw Error(std::string(op) + ": this softmax_cross_entropy was recorded with " +
                    (with_labels ? "a target matrix: use set_targets" : "class labels: use set_labels"));
    return n;
}

template <class T>
void Replay<T>::set_labels(const Var<T>& loss, const Labels& classes) {
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::set_labels");
    Node<T>& n = loss_entry(loss, true);
    ops::require_labels("Replay::set_labels", shape_of(tape_.input(n, 0)), classes);
    n.labels() = classes;  // same length: copy-assign reuses the capacity
}

template <class T>
void Replay<T>::set_targets(const Var<T>& loss, const Matrix<T>& Y) {
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::set_targets");
    Node<T>& n = loss_entry(loss, false);
    if (shape_of(Y) != shape_of(n.targets()))
        ops::fail("Replay::set_targets", "Y is " + to_string(shape_of(Y)) + " but the logits are " +
                                             to_string(shape_of(n.targets())) + " (they must have the same shape)");
    ops::require_finite("Replay::set_targets", "Y", Y);
    std::copy(Y.begin(), Y.end(), n.targets().begin());
}

template class Replay<float>;
template class Replay<double>;

}  // namespace autodiff
