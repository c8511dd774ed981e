#include "nn/replayed_step.hpp"

#include <algorithm>

namespace nn {

namespace {

// Whether a recorded step reads the batch only where a replay reads it anew: the labels of the
// loss entry, relabelled each run with the batch's (`relabelled`, else none), and
// constant_ref(batch.X) or constant_ref(batch.targets). A loss that says it is replayable but
// copies the labels into another entry (nll_loss, a gather, a cross-entropy scaled after) or
// copies a matrix (the targets, or anything computed from the batch: Tape::constant,
// Tape::leaf) was replayed on the first batch's, silently (found by an attack): such a step is
// recorded every time instead. So is one whose loss entry copies its target matrix (a
// softmax_cross_entropy given a Matrix, which a replay keeps), or takes labels other than the
// batch's (remapped classes, which a replay would replace with the batch's): both were
// replayed, wrong, without a word (found by an attack). Every copy of a matrix is an entry
// that holds_caller_copy(), as the engine records it, whatever the op.
template <class T>
bool reads_batch_only_in_place(const autodiff::Tape<T>& tape, const autodiff::Var<T>* relabelled,
                               const autodiff::Labels& batch_labels) {
    for (std::size_t i = 0; i < tape.size(); ++i) {
        const autodiff::Node<T>& n = tape.entry(i);
        if (!n.labels().empty() && (relabelled == nullptr || i != relabelled->index() || n.labels() != batch_labels))
            return false;
        if (n.holds_caller_copy()) return false;
    }
    return true;
}

}  // namespace

template <class T>
ReplayedStep<T>::ReplayedStep(Module<T>& model, const Loss<T>& loss, bool replay) : model_(model), loss_(loss) {
    set_replay(replay);
}

template <class T>
void ReplayedStep<T>::set_replay(bool on) {
    replay_ = on;
    for (Recording& r : recordings_) r.replay.reset();
}

// Judged again whenever the model changed, not once: a BatchNorm appended after this was
// built has running statistics that a replay would leave at the first step's. Cached per
// version: named_buffers() allocates, and a model with buffers records every step.
template <class T>
bool ReplayedStep<T>::model_replayable() {
    if (judged_version_ != model_.version()) {
        model_replayable_ = loss_.replayable && model_.named_buffers().empty() && model_.replayable();
        judged_version_ = model_.version();
    }
    return model_replayable_;
}

template <class T>
typename ReplayedStep<T>::Recording& ReplayedStep<T>::recording(std::size_t count) {
    ++clock_;
    for (Recording& r : recordings_) {
        if (r.count == count) {
            r.last_used = clock_;
            return r;
        }
    }
    if (recordings_.size() < max_recordings) {
        GradientSync<T>* const sync = sync_.get("ReplayedStep");
        Recording& r = recordings_.emplace_back();
        if (sync) sync->attach(r.tape);
        r.count = count;
        r.last_used = clock_;
        return r;
    }
    Recording& r = *std::min_element(recordings_.begin(), recordings_.end(),
                                     [](const Recording& a, const Recording& b) { return a.last_used < b.last_used; });
    r.replay.reset();  // the next run(count) records afresh, on the same tape and buffers
    r.count = count;
    r.last_used = clock_;
    return r;
}

template <class T>
void ReplayedStep<T>::set_gradient_sync(GradientSync<T>* sync) {
    // A sync destroyed first cannot detach the tapes: they forget it themselves.
    GradientSync<T>* before = sync_.live();
    for (Recording& r : recordings_) {
        if (before) before->detach(r.tape);
        else r.tape.set_gradient_ready_hook(nullptr, nullptr);
        if (sync) sync->attach(r.tape);
    }
    sync_ = HeldSync<T>(sync);
}

template <class T>
T ReplayedStep<T>::run(std::size_t count) {
    sync_.get("ReplayedStep::run");  // its tapes' sweeps call it
    Recording& r = recording(count);
    if (current(r)) {
        if (r.relabel) r.replay->set_labels(r.loss, r.batch.labels);
        return r.replay->run();
    }
    r.replay.reset();  // before the tape it holds is recorded on again
    r.tape.reset();
    r.output = model_(r.tape.constant_ref(r.batch.X));
    r.loss = loss_.compute(r.output, r.batch);
    r.tape.backward(r.loss);
    if (replay_ && model_replayable()) {
        r.model_version = model_.version();
        const autodiff::Node<T>& loss = r.tape.node(r.loss);
        r.relabel = std::strcmp(loss.op, "softmax_cross_entropy") == 0 && !loss.labels().empty();
        if (!reads_batch_only_in_place(r.tape, r.relabel ? &r.loss : nullptr, r.batch.labels)) return r.loss.value()(0, 0);
        try {
            r.replay = std::make_unique<autodiff::Replay<T>>(r.tape, r.loss, std::vector<autodiff::Var<T>>{r.output});
        } catch (const autodiff::Error&) {  // an entry that cannot run again: record every step
            replay_ = false;
        }
    }
    return r.loss.value()(0, 0);
}

template class ReplayedStep<float>;
template class ReplayedStep<double>;

}  // namespace nn
