#include "nn/replayed_step.hpp"

namespace nn {

template <class T>
ReplayedStep<T>::ReplayedStep(Module<T>& model, bool replay)
    : model_(model) {
    set_replay(replay);
}

template <class T>
void ReplayedStep<T>::set_replay(bool on) {
    replay_ = on && model_.named_buffers().empty();
    for (Recording& r : recordings_) r.replay.reset();
}

template <class T>
typename ReplayedStep<T>::Recording& ReplayedStep<T>::recording(std::size_t count) {
    for (Recording& r : recordings_)
        if (r.count == count) return r;
    Recording& r = recordings_.emplace_back();
    r.count = count;
    return r;
}

template <class T>
T ReplayedStep<T>::run(std::size_t count) {
    Recording& r = recording(count);
    if (r.replay) {
        r.replay->set_labels(r.loss, r.batch.y);
        return r.replay->run();
    }
    r.tape.reset();
    r.logits = model_(r.tape.constant_ref(r.batch.X));
    r.loss = autodiff::softmax_cross_entropy(r.logits, r.batch.y);
    r.tape.backward(r.loss);
    if (replay_) {
        try {
            r.replay = std::make_unique<autodiff::Replay<T>>(r.tape, r.loss);
        } catch (const autodiff::Error&) {  // an entry that cannot run again: record every step
            replay_ = false;
        }
    }
    return r.loss.value()(0, 0);
}

template class ReplayedStep<float>;
template class ReplayedStep<double>;

}  // namespace nn
