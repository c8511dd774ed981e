#include "nn/distributed/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "autodiff/error.hpp"

namespace nn::distributed {

using autodiff::Parameter;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class T>
std::string name_of(const Parameter<T>& p) {
    return p.name.empty() ? "(unnamed)" : "'" + p.name + "'";
}

}  // namespace

template <class T>
DataParallel<T>::DataParallel(Communicator& comm, std::vector<Parameter<T>*> parameters, std::size_t bucket_bytes)
    : comm_(comm) {
    if (bucket_bytes == 0) throw autodiff::Error("DataParallel: the bucket size must be at least 1 byte");
    if (parameters.empty()) throw autodiff::Error("DataParallel: no parameters");
    // Last parameter first: the backward sweep finishes the last layer first.
    std::size_t bytes = 0;
    for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
        Parameter<T>* p = *it;
        if (p == nullptr) throw autodiff::Error("DataParallel: a null parameter");
        if (!slot_of_.emplace(p, slots_.size()).second)
            throw autodiff::Error("DataParallel: parameter " + name_of(*p) + " is listed twice");
        const std::size_t size = p->value.size() * sizeof(T);
        if (buckets_.empty() || (bytes > 0 && bytes + size > bucket_bytes)) {
            buckets_.emplace_back();
            bytes = 0;
        }
        Bucket& b = buckets_.back();
        slots_.push_back({p, buckets_.size() - 1, b.data.size(), p->value.size()});
        b.slots.push_back(slots_.size() - 1);
        b.data.resize(b.data.size() + p->value.size());
        bytes += size;
    }
    broadcast_parameters();
}

template <class T>
void DataParallel<T>::broadcast_parameters() {
    for (const Slot& s : slots_) comm_.broadcast(s.parameter->value.data(), s.parameter->value.size(), 0);
}

template <class T>
void DataParallel<T>::attach(autodiff::Tape<T>& tape) {
    tape.set_gradient_ready_hook(&DataParallel::on_ready, this);
}

template <class T>
void DataParallel<T>::detach(autodiff::Tape<T>& tape) {
    tape.set_gradient_ready_hook(nullptr, nullptr);
}

template <class T>
void DataParallel<T>::begin_step(std::size_t local, std::size_t global) {
    if (in_step_) throw autodiff::Error("DataParallel::begin_step: the previous step was not finish()ed");
    if (global == 0 || local > global)
        throw autodiff::Error("DataParallel::begin_step: " + std::to_string(local) + " of " +
                              std::to_string(global) + " examples (need 0 <= local <= global, global >= 1)");
    weight_ = T(double(local) / double(global));
    for (Slot& s : slots_) s.ready = false;
    for (Bucket& b : buckets_) {
        b.waiting = b.slots.size();
        b.started = false;
    }
    next_to_start_ = 0;
    in_step_ = true;
}

template <class T>
void DataParallel<T>::on_ready(void* self, Parameter<T>& p) {
    auto& ddp = *static_cast<DataParallel*>(self);
    if (!ddp.overlap_ || ddp.comm_.size() == 1) return;  // all of it in finish()
    if (!ddp.in_step_)
        throw autodiff::Error("DataParallel: backward() ran outside begin_step() ... finish()");
    const auto found = ddp.slot_of_.find(&p);
    if (found == ddp.slot_of_.end()) return;  // not a parameter this object averages
    ddp.ready(ddp.slots_[found->second]);
}

template <class T>
void DataParallel<T>::ready(Slot& slot) {
    if (slot.ready)
        throw autodiff::Error("DataParallel: the gradient of " + name_of(*slot.parameter) +
                              " was finished twice in one step (one backward() per begin_step()/finish())");
    slot.ready = true;
    Bucket& b = buckets_[slot.bucket];
    const autodiff::Matrix<T>& g = slot.parameter->grad;
    if (g.size() != slot.size)
        throw autodiff::Error("DataParallel: parameter " + name_of(*slot.parameter) + " has " +
                              std::to_string(g.size()) + " gradient entries but had " + std::to_string(slot.size) +
                              " when its bucket was laid out");
    T* out = b.data.data() + slot.offset;
    if (weight_ == T(0))
        std::fill(out, out + g.size(), T(0));  // a rank without examples adds nothing, even if its grad is NaN
    else
        std::transform(g.begin(), g.end(), out, [w = weight_](T x) { return w * x; });
    --b.waiting;
    start_ready_buckets();
}

template <class T>
void DataParallel<T>::start_ready_buckets() {
    // Strictly in index order: every rank must start the same collectives in the same order.
    while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) {
        Bucket& b = buckets_[next_to_start_++];
        b.request = comm_.start_allreduce_sum(b.data.data(), b.data.size());
        b.started = true;
        ++stats_.reductions;
    }
    // MPI moves non-blocking collectives forward only inside MPI calls: nudge the ones in flight.
    for (std::size_t k = 0; k < next_to_start_; ++k) comm_.test(buckets_[k].request);
}

template <class T>
void DataParallel<T>::finish() {
    if (!in_step_) throw autodiff::Error("DataParallel::finish: no begin_step() before it");
    in_step_ = false;
    const auto start = std::chrono::steady_clock::now();
    ++stats_.steps;
    if (comm_.size() == 1) {  // nothing to exchange: only the weight (1 unless the caller splits)
        if (weight_ != T(1))
            for (Slot& s : slots_) s.parameter->grad *= weight_;
        stats_.finish_seconds += seconds_since(start);
        return;
    }
    for (Slot& s : slots_)
        if (!s.ready) ready(s);  // not recorded, not reached by the sweep, or overlap off
    for (Bucket& b : buckets_) {
        const auto wait_start = std::chrono::steady_clock::now();
        comm_.wait(b.request, "a gradient allreduce");
        stats_.wait_seconds += seconds_since(wait_start);
        for (std::size_t k : b.slots) {
            autodiff::Matrix<T>& g = slots_[k].parameter->grad;
            std::copy(b.data.begin() + slots_[k].offset, b.data.begin() + slots_[k].offset + g.size(), g.begin());
        }
    }
    stats_.finish_seconds += seconds_since(start);
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace nn::distributed
