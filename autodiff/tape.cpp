#include "autodiff/tape.hpp"

#include "autodiff/flat_step.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>

namespace autodiff {

namespace {

// Generations are unique across all tapes, so a handle can never pass for one of another
// tape's, nor for one recorded on the same tape before a reset.
std::uint64_t next_generation() { return detail::TapeRegistry::next_generation(); }

// reserve() to exactly n would reallocate on every call: grow geometrically instead.
template <class Item>
void reserve_for(std::vector<Item>& v, std::size_t n) {
    if (v.capacity() < n) v.reserve(std::max(n, 2 * v.capacity()));
}

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

// A copy gets a registry slot of its own (registry_'s default).
template <class T>
Parameter<T>::Parameter(const Parameter& other) : value(other.value), grad(other.grad), name(other.name) {}

// The registry slot moves with the arrays, under a new identity: recordings of `other`
// (which point at other's address) no longer match it and throw instead of reading the
// empty shell. `other` is left without a slot: recording it throws.
template <class T>
Parameter<T>::Parameter(Parameter&& other) noexcept
    : value(std::move(other.value)), grad(std::move(other.grad)), name(std::move(other.name)),
      registry_(std::move(other.registry_)), version_(other.version_) {}

// Assignment changes this parameter's values in place: a version bump, so that a recording
// made before refuses backward(); its identity stays (the object is where it was). One that
// was moved from has none, and gets one: assigned to, it is a parameter again (std::swap
// and std::sort move from an object, then assign to it).
template <class T>
Parameter<T>& Parameter<T>::operator=(const Parameter& other) {
    if (this == &other) return *this;
    value = other.value;
    grad = other.grad;
    name = other.name;
    ++version_;
    if (!registry_.has_slot()) registry_ = detail::RegistryIdentity();
    return *this;
}

template <class T>
Parameter<T>& Parameter<T>::operator=(Parameter&& other) noexcept {
    if (this == &other) return *this;
    value = std::move(other.value);
    grad = std::move(other.grad);
    name = std::move(other.name);
    ++version_;
    if (!registry_.has_slot())  // as the move constructor does: other's slot, under a new identity
        registry_ = std::move(other.registry_);
    else  // other keeps its slot (if it has one), but recordings of it are void
        other.registry_.renew();
    return *this;
}

// The registry slot is released by registry_'s destructor: recordings of this one then throw.
template <class T>
Parameter<T>::~Parameter() = default;

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
    if (n.parameter != nullptr) tape_->parameter_value(n);  // throws if the parameter is gone
    if (n.parameter != nullptr && tape_->accumulate_into_parameters_) return n.parameter->grad;
    if (n.replay_owned & Node<T>::replay_grad) tape_->reject_replay_owned(index_, "Var::grad", "gradient");
    if (!tape_->gradient_started(index_))
        throw Error(std::string("Var::grad: no gradient for this ") + n.op +
                    " entry (it is a constant, does not lead to the loss, or backward() was not called)");
    return n.in_line() ? tape_->materialized_grad(n) : n.grad;
}

// ---- Tape ----

template <class T>
void Tape<T>::check_index(std::size_t index, const char* who) const {
    if (index >= size_)
        throw Error(std::string(who) + ": index " + std::to_string(index) + " but the tape holds " +
                    std::to_string(size_) + " entries");
}

template <class T>
void Tape<T>::reject_replay_owned(std::uint32_t index, const char* who, const char* what) const {
    throw Error(std::string(who) + ": the " + what + " of tape entry " + std::to_string(index) + " (" +
                nodes_[index].op + ") is not kept: a Replay of this tape keeps the intermediate values and gradients "
                "that only its own steps read in memory of its own, shared between entries where their lifetimes "
                "allow (as PyTorch keeps no intermediate gradient unless asked); pass the handle in the Replay's "
                "keep list to read it after a run");
}

template <class T>
bool Tape<T>::gradient_started(std::size_t index) const {
    check_index(index, "Tape::gradient_started");
    return refs_[index] & started;
}

template <class T>
Tape<T>::Tape() : slot_(detail::TapeRegistry::acquire()), generation_(next_generation()) {
    detail::TapeRegistry::generation(slot_).store(generation_, std::memory_order_release);
}

template <class T>
Tape<T>::~Tape() {
    detail::TapeRegistry::release(slot_);
}

template <class T>
void Tape<T>::reject(const Var<T>& v, const char* op) const {
    if (v.tape_ != this && v.tape_ != nullptr) v.require_live(op);  // a stale handle says so before "another tape"
    if (v.tape_ != this)
        throw Error(std::string(op) + ": the handle belongs to " +
                    (v.tape_ ? "another tape" : "no tape (default-constructed Var)"));
    throw Error(std::string(op) + ": stale handle: its tape was reset after it was recorded");
}

template <class T>
void Tape<T>::reject_after_backward(const char* op) const {
    if (!swept_)
        throw Error(std::string(op) + ": recording on a tape whose step a Replay holds (it keeps some intermediate "
                                      "values in memory of its own); call reset() first, or record on another tape");
    throw Error(std::string(op) + ": recording on a tape after backward(); call reset() first");
}

template <class T>
void Tape<T>::reject_arity(const char* op) {
    throw Error(std::string(op) + ": an op takes at most 3 inputs");
}

template <class T>
const Node<T>& Tape<T>::node(const Var<T>& v) const {
    check(v, "Tape::node");
    return nodes_[v.index_];
}

template <class T>
const Node<T>& Tape<T>::entry(std::size_t index) const {
    check_index(index, "Tape::entry");
    return nodes_[index];
}

namespace {
template <class T>
const Matrix<T>& copy_into(Matrix<T>& m, const T* from, Shape shape) {
    ensure_shape(m, shape);
    std::copy(from, from + shape.size(), m.data());
    return m;
}
}  // namespace

// The entry's matrices are its own to fill (value_of is const: the tape's entries are not).
template <class T>
const Matrix<T>& Tape<T>::materialized_value(const Node<T>& n) const {
    return copy_into(const_cast<Node<T>&>(n).value, n.inline_value(), n.inline_shape());
}

template <class T>
const Matrix<T>& Tape<T>::materialized_grad(const Node<T>& n) const {
    return copy_into(const_cast<Node<T>&>(n).grad, n.inline_grad(), n.inline_shape());
}

template <class T>
GradientSink<T> Tape<T>::detour_grad(std::uint32_t index) {
    Node<T>& in = nodes_[index];
    for (std::uint32_t d = 0; d < detour_count_; ++d)
        if (detours_[d].index == index) return {detour_grads_[d], false};  // the op's second contribution
    if (detour_count_ == detours_.size())
        throw Error(std::string("backward: an op's backward asked Tape::grad_of for more than ") +
                    std::to_string(detours_.size()) + " entries (an op has at most 3 inputs)");
    const bool overwrite = claim_gradient(index, false);
    Matrix<T>& g = detour_grads_[detour_count_];
    ensure_shape(g, in.inline_shape());
    detours_[detour_count_++] = {index, overwrite};
    return {g, true};
}

// A user's backward may have replaced the matrix it was given: refused, naming the op `by`
// (entry by_index) as check_input_grads_kept does (the block holds exactly the entry's elements).
template <class T>
void Tape<T>::merge_detours(const Node<T>* by, std::uint32_t by_index) {
    const std::uint32_t count = detour_count_;
    detour_count_ = 0;
    for (std::uint32_t d = 0; d < count; ++d) {
        const std::uint32_t j = detours_[d].index;
        Node<T>& in = nodes_[j];
        const Matrix<T>& g = detour_grads_[d];
        const std::size_t n = in.inline_size();
        if (shape_of(g) != in.inline_shape()) {
            // Named as check_input_grads_kept names an input that is not inline: the op at fault first.
            for (std::uint8_t k = 0; by != nullptr && k < by->arity; ++k)
                if (by->inputs[k] == j) reject_replaced_grad(*by, by_index, k, shape_of(g), in.inline_shape());
            throw Error("backward: the gradient of tape entry " + std::to_string(j) + " (" + in.op + ") was left " +
                        to_string(shape_of(g)) + " but the entry is " + to_string(in.inline_shape()) +
                        ": an op replaced it instead of adding to it (write gradients through Tape::grad_of)");
        }
        const T* from = g.data();
        accumulate_flat(in.inline_grad(), detours_[d].overwrite, n, [from](std::size_t k) { return from[k]; });
    }
}

template <class T>
void Tape<T>::reject_shape(const char* op, Shape shape) {
    throw Error(std::string(op) + ": an output of " + to_string(shape) + " (rows x cols) has more elements than memory can address");
}

template <class T>
void Tape<T>::reject_concurrent_use(const char* op) {
    throw Error(std::string(op) +
                ": this tape is being used by another thread at the same time, or this call comes from inside one "
                "of its own recordings or sweeps (an op's forward or backward may not use the tape it runs on): one "
                "tape per thread (a Tape belongs to one thread at a time, and to the thread of a NoGrad scope while "
                "it lives; give each thread its own Tape and its own model copy)");
}

// Settings are not on any hot path: each takes the tape as an op does (ExclusiveUse).
template <class T>
void Tape<T>::set_memory_limit(std::size_t bytes) {
    ExclusiveUse one_thread(*this, "Tape::set_memory_limit");
    memory_limit_ = bytes;
}

template <class T>
void Tape<T>::set_detect_anomaly(bool on) {
    ExclusiveUse one_thread(*this, "Tape::set_detect_anomaly");
    detect_anomaly_ = on;
}

template <class T>
void Tape<T>::set_accumulate_into_parameters(bool on) {
    ExclusiveUse one_thread(*this, "Tape::set_accumulate_into_parameters");
    accumulate_into_parameters_ = on;
}

template <class T>
void Tape<T>::set_grad_enabled(bool on) {
    ExclusiveUse one_thread(*this, "Tape::set_grad_enabled");
    grad_enabled_ = on;
}

template <class T>
void Tape<T>::set_gradient_ready_hook(GradientReadyFn<T> ready, void* context, HookOwner owner) {
    ExclusiveUse one_thread(*this, "Tape::set_gradient_ready_hook");
    ready_hook_ = ready;
    ready_context_ = context;
    ready_owner_ = owner;
}

// value_and_grad turns accumulation off for its call and puts it back in a destructor when the
// call throws; set_accumulate_into_parameters could throw there, ending the program. Held by
// this thread (a NoGrad scope of the caller's) or free, the tape is set as the setter would.
// Otherwise it is left as it is: busy without this thread holding it means another thread uses
// it, or this thread's own sweep or recording that value_and_grad was called from inside (a
// hook's); writing would race with that thread, or change that sweep's setting half way. The
// exception being thrown is then, nearly always, the refusal of value_and_grad's own use of
// the tape (its reset() or a recording), which already names the misuse; value_and_grad's
// normal end restores with the setter, which throws. So no destructor throws, and none writes
// a setting another thread is reading.
template <class T>
bool Tape<T>::try_restore_accumulation(bool on) noexcept {
    if (held_by_this_thread()) {
        accumulate_into_parameters_ = on;
        return true;
    }
    if (busy_.exchange(true, std::memory_order_acquire)) return false;
    accumulate_into_parameters_ = on;
    unlock();
    return true;
}

template <class T>
void Tape<T>::reject_value_shape(const Node<T>& n, Shape declared) {
    throw Error(std::string(n.op) + ": its forward left a " + to_string(shape_of(n.value)) + " value, but it was recorded as " +
                to_string(declared) + " (Tape::record's shape): fill node.value in place, or record the shape it makes");
}

template <class T>
void Tape<T>::reject_parameter(const Node<T>& n) const {
    std::size_t index = 0;
    while (index < size_ && &nodes_[index] != &n) ++index;
    throw Error("parameter (" + to_string(n.leaf().recorded_shape) + ", tape entry " + std::to_string(index) +
                ") was destroyed or moved from after it was recorded: a tape reads parameters in place, so keep "
                "them alive and where they are until the tape is reset()");
}

template <class T>
void Tape<T>::reject_memory(const char* op, std::size_t value_bytes) const {
    auto mib = [](std::size_t bytes) {  // rounded up: below a MiB, in bytes ("1 MiB past a limit of 1 MiB" said nothing)
        return bytes < (1u << 20) ? std::to_string(bytes) + " bytes"
                                  : std::to_string((bytes >> 20) + ((bytes & ((1u << 20) - 1)) != 0)) + " MiB";  // no wrap near 2^64
    };
    throw Error(std::string(op) + ": recording it would make the tape hold " + mib(held_bytes(value_bytes)) +
                " of values and entries (" + std::to_string(live_entries()) + " entries), past its limit of " +
                mib(memory_limit_) +
                ". A loop that records without calling tape.reset() each iteration grows the tape without bound "
                "(under NoGrad too, while it keeps handles); reset() each step, or raise the limit with "
                "Tape::set_memory_limit (0: none)");
}

// Under NoGrad, an entry no handle refers to any more is reused; which one decides whether
// a buffer is reallocated. One of the last few released whose buffer already has the size
// asked for; failing that a new entry, whose buffer of this size then joins the pool (an
// evaluation alternating 14x1 states and 1x1 losses would otherwise resize a buffer of the
// other size on nearly every op); and once that many are waiting, the last released, so
// that the tape holds at most kMaxWaiting entries beyond those handles refer to.
template <class T>
bool Tape<T>::take_released_searching(std::size_t wanted, std::uint32_t& index) {  // take_released's rest
    constexpr std::size_t kLook = 8, kMaxWaiting = 32;
    if (free_.empty()) return false;
    const std::size_t look = std::min(free_.size(), kLook);
    for (std::size_t k = 2; k <= look; ++k)
        if (free_[free_.size() - k].size == wanted) {
            std::swap(free_[free_.size() - k], free_.back());
            index = free_.back().index;
            free_.pop_back();
            return true;
        }
    if (free_.size() < kMaxWaiting) return false;
    index = free_.back().index;
    free_.pop_back();
    return true;
}

// A new entry at the end, its vectors reserved first, so that nothing after it exists can throw.
template <class T>
void Tape<T>::add_entry() {
    reserve_for(refs_, nodes_.size() + 1);
    reserve_for(free_, nodes_.size() + 1);
    nodes_.emplace_back();
    refs_.push_back(0);
}

// After a throw inside a recording: the entry leaves the tape, and any of its buffers whose
// shape disagrees with its storage (xtensor sets the shape before it allocates) is emptied,
// so that the next recording into it resizes instead of writing past the end.
template <class T>
void Tape<T>::abandon(std::uint32_t index) noexcept {
    Node<T>& n = nodes_[index];
    auto sane = [](Matrix<T>& m) {
        if (m.storage().size() != m.shape()[0] * m.shape()[1]) m = Matrix<T>();
    };
    sane(n.value), sane(n.grad);
    if (n.extras) sane(n.extras->saved), sane(n.extras->targets), sane(n.extras->work[0]), sane(n.extras->work[1]);
    forget_recording(n, "(abandoned)");
    refs_[index] = 0;
    if (!last_push_reused_ && index + 1 == size_) --size_;
    else free_.push_back({index, n.value.size()});  // capacity reserved in push()
}

// A NoGrad entry that a recorded op reads: never reused, and if it is a parameter, checked
// by backward like the others.
template <class T>
void Tape<T>::pin_nograd_entry(std::uint32_t index) {
    if (nodes_[index].reads_in_place()) in_place_entries_.push_back(index);
    refs_[index] |= pinned;
}


// A leaf's value is its data (copied when recorded, or a parameter read in place): running
// its entry again, as a replay does, leaves it as it is.
namespace {
template <class T>
void leaf_forward(Tape<T>&, Node<T>&) {}
}  // namespace

template <class T>
Var<T> Tape<T>::copy_leaf(const Matrix<T>& value, const char* op, bool is_leaf) {
    check_not_empty(value, op);
    ExclusiveUse one_thread(*this, op);
    const std::uint32_t index = push(op, value.size() * sizeof(T));
    Node<T>& n = nodes_[index];
    try {
        ensure_shape(n.value, shape_of(value));
    } catch (...) {
        abandon(index);
        throw;
    }
    std::copy(value.begin(), value.end(), n.value.begin());
    n.flags |= Node<T>::caller_copy;
    n.forward = leaf_forward<T>;
    // The grad mode read once the tape is this thread's: another thread's NoGrad scope ending
    // between a read before the lock and the lock made leaves without gradients (an attack).
    n.requires_grad = is_leaf && grad_enabled_;
    recorded_bytes_ += n.value.size() * sizeof(T);
    if (detect_anomaly_) check_new_value(index);
    return handle(index);
}

// An entry that reads a value in place joins the list backward() checks now if it may be
// swept, or when it is pinned if recorded under NoGrad: listed at once, the entries of a
// NoGrad loop would grow the list by one per evaluation, and their indices would stay in it
// after the entries were reused for other ops.
template <class T>
std::uint32_t Tape<T>::push_in_place(const char* op) {
    if (grad_enabled_) reserve_for(in_place_entries_, in_place_entries_.size() + 1);
    const std::uint32_t index = push(op, 0);
    Node<T>& n = nodes_[index];
    try {
        n.leaf();  // made here, where a throw (no memory) can still leave the tape as it was
    } catch (...) {
        abandon(index);
        throw;
    }
    n.flags |= Node<T>::in_place;
    if (grad_enabled_) in_place_entries_.push_back(index);  // capacity reserved: cannot throw
    return index;
}

template <class T>
Var<T> Tape<T>::constant(const Matrix<T>& value) {
    return copy_leaf(value, "constant", false);
}

template <class T>
Var<T> Tape<T>::constant_ref(const Matrix<T>& value) {
    check_not_empty(value, "constant_ref");
    ExclusiveUse one_thread(*this, "constant_ref");
    const std::uint32_t index = push_in_place("constant_ref");
    Node<T>& n = nodes_[index];
    n.forward = leaf_forward<T>;
    n.leaf().in_place = &value;
    n.leaf().recorded_shape = shape_of(value);
    if (detect_anomaly_) check_new_value(index);
    return handle(index);
}

template <class T>
Var<T> Tape<T>::leaf(const Matrix<T>& value) {
    return copy_leaf(value, "leaf", true);
}

template <class T>
Var<T> Tape<T>::parameter(Parameter<T>& p) {
    if (!p.registry_.has_slot())
        throw Error("parameter: this Parameter was moved from; record the Parameter it was moved into");
    check_not_empty(p.value, "parameter");
    if (p.grad.shape() != p.value.shape()) p.zero_grad();  // value was replaced by another shape
    ExclusiveUse one_thread(*this, "parameter");
    const std::uint32_t index = push_in_place("parameter");
    Node<T>& n = nodes_[index];
    n.forward = leaf_forward<T>;
    n.parameter = &p;
    NodeExtras<T>& leaf = n.leaf();
    leaf.in_place = &p.value;
    leaf.recorded_shape = p.shape();
    leaf.parameter_slot = p.registry_.slot();
    leaf.parameter_identity = p.registry_.identity();
    leaf.parameter_version = p.version_;
    n.requires_grad = grad_enabled_;
    if (detect_anomaly_) check_new_value(index);
    return handle(index);
}

template <class T>
void Tape<T>::reset() {
    ExclusiveUse one_thread(*this, "reset");
    size_ = 0;
    free_.clear();
    in_place_entries_.clear();
    recorded_bytes_ = 0;
    swept_ = false;
    held_by_replay_ = false;
    replay_owner_.store(nullptr);
    live_replays_.store(0);
    generation_ = next_generation();
    detail::TapeRegistry::generation(slot_).store(generation_, std::memory_order_release);
}


template <class T>
void Tape<T>::reject_input(const Node<T>& n, int i) {
    throw Error(std::string(n.op) + ": its backward asked for input " + std::to_string(i) + " but it has " +
                std::to_string(n.arity) + (n.arity == 1 ? " input" : " inputs"));
}


template <class T>
void Tape<T>::reject_grad_for_nograd_parameter(const Node<T>& n, int i) const {
    const Node<T>& in = nodes_[n.inputs[i]];
    const NodeExtras<T>& leaf = in.in_place_record();
    // It may be gone since (nothing else reads it): named only if it still lives.
    const bool alive = detail::TapeRegistry::generation(leaf.parameter_slot).load(std::memory_order_acquire) ==
                       leaf.parameter_identity;
    const std::string what = alive ? "the parameter '" + in.parameter->name + "' (" + to_string(leaf.recorded_shape) + ")"
                                   : "a parameter (" + to_string(leaf.recorded_shape) + ", since destroyed)";
    throw Error(std::string(n.op) + ": its backward asked Tape::grad_of for input " + std::to_string(i) + ", " + what +
                " recorded under NoGrad, which takes no gradient; test tape.needs_grad(node, " + std::to_string(i) +
                ") first");
}

template <class T>
void Tape<T>::backward(const Var<T>& output) {
    ExclusiveUse one_thread(*this, "backward");
    if (held_by_replay_) reject_held_by_replay("backward");
    backward_from_scalar(output);
}

// The entries' own backwards would read values a Replay has kept in its arena instead.
template <class T>
void Tape<T>::reject_held_by_replay(const char* op) const {
    throw Error(std::string(op) + ": a Replay holds this tape's step and keeps some of its values in memory of its "
                                  "own, so the entries' buffers are stale; run() the Replay, or reset() the tape and "
                                  "record again");
}

template <class T>
void Tape<T>::backward_from_scalar(const Var<T>& output, FlatPlan<T>* plan, bool in_place_rerecorded) {
    check(output, "backward");
    const Shape s = shape_of(value(output.index_));
    if (s != Shape{1, 1})
        throw Error("backward: the output is " + to_string(s) +
                    ", not 1x1: pass a seed of that shape (backward(output, seed))");
    start_backward(output, in_place_rerecorded).accumulate([](std::size_t) { return T(1); });
    sweep(output, plan);
}

template <class T>
void Tape<T>::backward(const Var<T>& output, const Matrix<T>& seed) {
    ExclusiveUse one_thread(*this, "backward");
    if (held_by_replay_) reject_held_by_replay("backward");
    check(output, "backward");
    if (shape_of(seed) != shape_of(value(output.index_)))
        throw Error("backward: seed is " + to_string(shape_of(seed)) + " but the output is " +
                    to_string(shape_of(value(output.index_))));
    // A NaN or infinite seed made every gradient NaN (or infinite) without a word, unless
    // anomaly detection was on (found by an attack): refused either way.
    const std::string non_finite = first_non_finite(seed);
    if (!non_finite.empty()) {
        if (detect_anomaly_) throw AnomalyError("anomaly: the seed given to backward holds " + non_finite);
        throw Error("backward: the seed (" + to_string(shape_of(seed)) + ") holds " + non_finite +
                    ": every gradient would be NaN or infinite");
    }
    const T* s = seed.data();
    start_backward(output).accumulate([s](std::size_t k) { return s[k]; });
    sweep(output, nullptr);
}

template <class T>
GradientSink<T> Tape<T>::start_backward(const Var<T>& output, bool in_place_rerecorded) {
    if (swept_) throw Error("backward: this tape was already swept; reset() it and record again");
    // Found by an attack: a data-parallel sync destroyed while still attached to a tape was
    // called, in freed memory, by the tape's next sweep. The engine knows the owner only by
    // its identity, so the message names no type: whoever holds one by address (nn's Trainer
    // holds its sync) checks it first and names it there.
    if (ready_hook_ != nullptr && accumulate_into_parameters_ && !ready_owner_.alive())
        throw Error("backward: the gradient-ready hook's owner was destroyed while the hook was set; "
                    "detach it (set_gradient_ready_hook(nullptr, nullptr)) before destroying it");
    Node<T>& out = nodes_[output.index_];
    if (!out.requires_grad)
        throw Error(std::string("backward: the output (") + out.op +
                    ") depends on no parameter or leaf that needs a gradient (recorded under NoGrad?)");
    // No entry's gradient is started since push() (or since Replay::forward cleared it
    // for a sweep of the same entries again), and a tape is swept once: only the entries
    // that read a value in place need a look, not every entry.
    for (const std::uint32_t i : in_place_entries_) {
        // The replay's in_place_ are these same entries (every pinned one that reads in place).
        // Still asked whether the parameter lives before its gradient is read: cheap, and a
        // stale trust (an entry marked as the library's that is not) then throws, not reads
        // freed memory.
        if (in_place_rerecorded) {
            const Node<T>& n = nodes_[i];
            if (n.parameter != nullptr && n.reads_in_place()) parameter_value(n);
            check_parameter_grad(n, i);
        } else {
            check_in_place_unchanged(i);
        }
        if (detect_anomaly_) check_finite_accumulated_grad(i);
    }
    detour_count_ = 0;  // left by a backward that threw in an earlier sweep
    if (out.in_line()) return detour_grad(output.index_);  // added to its block as the sweep starts
    const bool overwrite = !(out.parameter && accumulate_into_parameters_);
    Matrix<T>& g = grad_buffer(out);
    if (overwrite) ensure_shape(g, shape_of(value(output.index_)));
    refs_[output.index_] |= started;
    return {g, overwrite};
}

template <class T>
void Tape<T>::check_in_place_shape(const Node<T>& n, std::size_t index, const char* op) const {
    // Ops read parameters and constant_refs in place: one resized since it was recorded
    // would make them read past the end of their buffers.
    if (!n.reads_in_place()) return;
    const NodeExtras<T>& leaf = n.in_place_record();
    if (shape_of(*leaf.in_place) == leaf.recorded_shape) return;
    const std::string what = n.parameter ? "parameter '" + n.parameter->name + "'" : std::string("constant_ref");
    throw Error(std::string(op) + ": " + what + " was " + to_string(leaf.recorded_shape) + " when recorded (tape entry " +
                std::to_string(index) + ") and is " + to_string(shape_of(*leaf.in_place)) + " now");
}

// Which of a flat step's inputs' gradients its backward starts (overwrite[k]) and where
// those gradients are now.
template <class T>
void Tape<T>::claim_flat_inputs(FlatStep<T>& step, std::uint32_t index, bool* overwrite) {
    for (std::uint32_t k = 0; k < step.arity; ++k)
        if (step.gx[k] != nullptr || ((step.grads_from_entries >> k) & 1))
            overwrite[k] = claim_gradient(step.input[k], (step.parameters >> k) & 1);
    if (step.grads_from_entries != 0) point_at_entries_grads(step, index, overwrite);
}

// An affine step (autodiff/flat_step.hpp) claims its inputs' gradients in the order its
// parts' own backwards would (the activation's: the add's gradient, the add's: b, the mul's:
// x and w; the mul's own gradient, which only the parts read, is marked started as the add's
// backward would), then runs as one. Under anomaly detection each part runs on its own, with
// its plain kernels, and is checked, so that the message names the entry at fault.
template <class T>
void Tape<T>::sweep_affine(FlatStep<T>& step, std::uint32_t index) {
    FlatStep<T>& mul = fused_mul(step);
    bool overwrite[2][2] = {};  // the mul's, then this step's (the add's gradient, b's)
    claim_flat_inputs(step, index, overwrite[1]);
    if (mul.gy != nullptr) {
        claim_gradient(index - 2, false);
        claim_flat_inputs(mul, index - 2, overwrite[0]);
    }
    if (!detect_anomaly_) return step.kernels.backward(step, &overwrite[0][0]);
    AffineParts<T> parts = affine_parts(step, index);
    bool add_overwrite[2];
    add_overwrite[1 - parts.bias_side] = true;  // the mul's gradient: its first contribution
    add_overwrite[parts.bias_side] = overwrite[1][1];
    const std::pair<FlatStep<T>*, const bool*> in_sweep_order[3] = {
        {&parts.own, overwrite[1]}, {&parts.add, add_overwrite}, {&parts.mul, overwrite[0]}};
    for (std::uint32_t part = 0; part < 3; ++part) {
        const FlatStep<T>& s = *in_sweep_order[part].first;
        const std::uint32_t entry = index - part;
        if (s.gy == nullptr) continue;
        s.kernels.backward(s, in_sweep_order[part].second);
        copy_owned_buffers_back(s, entry);
        check_finite_input_grads(nodes_[entry], entry);
    }
}

template <class T>
AffineParts<T> Tape<T>::affine_parts(const FlatStep<T>& step, std::uint32_t index) const {
    AffineParts<T> parts;
    parts.mul = fused_mul(step);
    const Node<T>& add = nodes_[index - 1];
    const int b = add.inputs[0] == index - 2 ? 1 : 0, t = 1 - b;  // b's side and the mul's value's
    parts.bias_side = b;
    FlatStep<T>& a = parts.add;
    a.kernels = detail::flat_kernels_of(add.forward).kernels;
    a.arity = 2;
    a.n = step.n;
    a.s = add.scalar;
    a.s2 = add.scalar2();
    a.x[t] = parts.mul.y, a.x[b] = step.x[1];
    a.y = const_cast<T*>(step.x[0]);  // the activation's input is the add's value (the replay's buffer)
    a.gy = step.gx[0];
    a.gx[t] = const_cast<T*>(parts.mul.gy), a.gx[b] = step.gx[1];
    a.input[t] = index - 2, a.input[b] = step.input[1];
    a.parameters = static_cast<std::uint8_t>(((step.parameters >> 1) & 1u) << b);
    a.grads_from_entries = static_cast<std::uint8_t>(((step.grads_from_entries >> 1) & 1u) << b);
    FlatStep<T>& own = parts.own;
    own = step;
    own.kernels = detail::flat_kernels_of(nodes_[index].forward).kernels;
    own.fused = 0;
    own.arity = 1;
    own.x[1] = nullptr, own.gx[1] = nullptr, own.input[1] = 0;
    own.parameters &= 1u;
    own.grads_from_entries &= static_cast<std::uint8_t>(~2u);
    return parts;
}

template <class T>
void Tape<T>::sweep(const Var<T>& output, FlatPlan<T>* plan) {
    // Swept even if an op's backward throws half way: parameters may already hold part of
    // the gradients, and a second sweep would add them twice.
    swept_ = true;
    const bool hooked = ready_hook_ != nullptr && accumulate_into_parameters_;
    if (hooked) find_final_leaves(output.index_);
    std::size_t next_final = 0;
    // Recording order is a topological order: walking it backwards visits every entry
    // after all the entries that consume it.
    // Only a tape far larger than the cache waits for its entries (a recurrent model's); an
    // MLP's dozen entries stay cached from the forward pass. Not a Replay's flat steps: their
    // plan is read in order, which the hardware prefetcher follows, and asking for their
    // buffers too made a replayed recurrent gradient slower (2 x 1024: 0.99-1.05 -> 1.13-1.22
    // of the hand-written one, bench/README.md).
    constexpr std::size_t kLongTape = 1024;
    const bool prefetch = output.index_ >= kLongTape;
    std::size_t unresolved = plan ? plan->leaf_grads.size() : 0;  // resolved as the sweep reaches their steps
    merge_detours(nullptr, 0);  // the seed, if the output's value is inline
    for (std::size_t i = output.index_ + 1; i-- > 0;) {
        if (prefetch && !plan) prefetch_for_sweep(i);
        // Only later entries add to a leaf: reaching it, its gradient is whole.
        if (hooked && next_final < final_leaves_.size() && final_leaves_[next_final].second == i)
            ready_hook_(ready_context_, *nodes_[final_leaves_[next_final++].second].parameter);
        if (!(refs_[i] & started)) continue;
        const std::int32_t flat = plan ? plan->step_of[i] : FlatPlan<T>::run_by_entry;
        if (flat == FlatPlan<T>::fused_away) continue;  // swept by the affine step after it
        if (flat >= 0) {  // its entry is not read
            FlatStep<T>& step = plan->steps[flat];
            if (step.gy == nullptr) continue;  // no backward: no input needs a gradient
            for (; unresolved > 0 && plan->leaf_grads[unresolved - 1].step + step.fused >= std::uint32_t(flat); --unresolved)
                resolve_leaf_grad(plan->steps[plan->leaf_grads[unresolved - 1].step], plan->leaf_grads[unresolved - 1].side,
                                  plan->leaf_grads[unresolved - 1].entry);
            if (step.fused != 0) {
                sweep_affine(step, static_cast<std::uint32_t>(i));
                continue;
            }
            bool overwrite[2] = {false, false};
            claim_flat_inputs(step, static_cast<std::uint32_t>(i), overwrite);
            step.kernels.backward(step, overwrite);
            if (detect_anomaly_) copy_owned_buffers_back(step, static_cast<std::uint32_t>(i));
        } else {
            Node<T>& n = nodes_[i];
            if (n.backward == nullptr) continue;
            n.backward(*this, n);
            if (!(n.flags & Node<T>::library_code)) check_after_users_backward(n, static_cast<std::uint32_t>(i), plan);
            if (detour_count_ != 0) merge_detours(&n, static_cast<std::uint32_t>(i));
        }
        if (detect_anomaly_) check_finite_input_grads(nodes_[i], static_cast<std::uint32_t>(i));
    }
}

namespace {
// The first lines of a buffer: a small value whole; of a large one, the start (the hardware
// prefetcher follows a sequential read from there). Always inline, as the functions that call
// it: a prefetch is no side effect to GCC's interprocedural analysis (-fipa-modref), which
// found such a function free of effects and deleted every call to it, so that no sweep
// prefetched anything (found by disassembling the sweep; tests/autodiff/compiled_code.sh).
[[gnu::always_inline]] inline void prefetch_lines(const void* p, std::size_t bytes) {
    constexpr std::size_t kMaxBytes = 256;
    const char* c = static_cast<const char*>(p);
    for (std::size_t k = 0; k < std::min(bytes, kMaxBytes); k += 64) __builtin_prefetch(c + k);
}
}  // namespace

// A recurrent model's tape is far larger than the cache, and walking it backwards each
// entry's backward reads its inputs' entries and buffers: latency the sweep would wait for
// entry by entry (half the time of a mul's backward went to two loads). Requested ahead,
// in stages, so that each stage reads only lines an earlier one brought in: the entry
// itself (kFar entries ahead), then its inputs' entries (kNear), then the buffers of both.
//
// An entry's first line and its inline block are what a swept entry whose value is inline
// reads (Node::in_line): both are asked for at once. The matrices' lines of one that is not
// are asked for once its first line (its flags) is in.
//
// How far ahead: 8, 4 and 2 entries on the Zen 2/3 machines of the first measurements; on a
// Zen 5 (AVX-512) 24, 12 and 6 took the recurrent gradient at 2 x 4096 from 13.7-14.0 to
// 11.4-11.7 ms and at 2 x 1024 from 2.34 to 2.24 ms (alternated runs), the in-cache sizes
// unchanged (bench/README.md, "Twenty-first session").
template <class T>
void Tape<T>::prefetch_for_sweep(std::size_t i) const {
    constexpr std::size_t kFar = 24, kNear = 12, kBuffers = 6;
    if (i >= kFar) prefetch_entry(nodes_[i - kFar]);
    if (i >= kNear) {
        const Node<T>& n = nodes_[i - kNear];
        if (!n.in_line()) prefetch_lines(&n.value, 2 * sizeof(Matrix<T>));
        if (n.extras) prefetch_lines(n.extras.get(), sizeof(NodeExtras<T>));  // what a loss's backward reads: saved, labels, work
        for (std::uint8_t k = 0; k < n.arity; ++k)  // those the first stage has not asked for
            if (n.inputs[k] + (kFar - kNear) < i - kNear) prefetch_entry(nodes_[n.inputs[k]]);
    }
    if (i >= kBuffers) prefetch_buffers(nodes_[i - kBuffers]);
}

template <class T>
void Tape<T>::prefetch_entry(const Node<T>& n) const {
    prefetch_lines(&n, 64);
    prefetch_lines(&n.small, sizeof(n.small));
}

template <class T>
void Tape<T>::prefetch_buffers(const Node<T>& n) const {
    if (n.backward == nullptr) return;
    if (!n.in_line()) prefetch_lines(n.grad.data(), n.grad.size() * sizeof(T));
    if (n.extras) {
        const NodeExtras<T>& more = *n.extras;
        prefetch_lines(more.saved.data(), more.saved.size() * sizeof(T));
        prefetch_lines(more.labels.data(), more.labels.size() * sizeof(std::size_t));
        prefetch_lines(more.work[0].data(), more.work[0].size() * sizeof(T));
        prefetch_lines(more.work[1].data(), more.work[1].size() * sizeof(T));
    }
    for (std::uint8_t k = 0; k < n.arity; ++k) {
        const Node<T>& in = nodes_[n.inputs[k]];
        if (in.in_line()) continue;  // with its entry
        prefetch_lines(in.value.data(), in.value.size() * sizeof(T));
        prefetch_lines(in.grad.data(), in.grad.size() * sizeof(T));
    }
}

// A user's backward may do what the library's never do (found by two attacks): assign an
// input's gradient instead of adding into it, resize, empty or replace a parameter's value or
// gradient, give a parameter or a constant_ref's matrix a new buffer. What the entries still to
// be swept read is checked, naming the op, and a replay's flat steps are pointed at where the
// values read in place are now (as a fresh sweep's entries read them).
template <class T>
void Tape<T>::check_after_users_backward(const Node<T>& n, std::uint32_t index, FlatPlan<T>* plan) {
    for (std::uint32_t j : in_place_entries_) {
        const Node<T>& leaf = nodes_[j];
        if (!leaf.reads_in_place()) continue;
        if (!in_place_readable(leaf)) check_in_place_readable(j, n.op);  // throws: destroyed or resized
        if (!parameter_grad_fits(leaf))  // mid-sweep an emptied one is not started afresh: its sum would be lost
            throw Error(std::string(n.op) + " (tape entry " + std::to_string(index) + "): its backward left parameter '" +
                        leaf.parameter->name + "''s gradient " + to_string(shape_of(leaf.parameter->grad)) +
                        ", but the parameter is " + to_string(leaf.in_place_record().recorded_shape) +
                        ": add into the sink Tape::grad_of gives, do not assign or resize it");
    }
    check_input_grads_kept(n, index);
    if (plan != nullptr) point_at_in_place_values(*plan);
}

template <class T>
void Tape<T>::point_at_in_place_values(FlatPlan<T>& plan) const {
    for (const auto& read : plan.in_place_values) repoint(plan.steps[read.step].x[read.side], value(read.entry).data());
}

// Its inputs' gradients have their values' shapes: one of another shape would be read past its
// end by the backward of the entry it belongs to.
template <class T>
void Tape<T>::check_input_grads_kept(const Node<T>& n, std::uint32_t index) const {
    for (std::uint8_t k = 0; k < n.arity; ++k) {
        const std::uint32_t j = n.inputs[k];
        if (!(refs_[j] & started)) continue;
        const Node<T>& in = nodes_[j];
        if (in.in_line()) continue;  // given a matrix of its own by grad_of: merge_detours checks it
        const Matrix<T>& g = grad_buffer(in);
        if (shape_of(g) == shape_of(value_of(in))) continue;
        reject_replaced_grad(n, index, k, shape_of(g), shape_of(value_of(in)));
    }
}

template <class T>
void Tape<T>::reject_replaced_grad(const Node<T>& n, std::uint32_t index, std::uint8_t k, Shape left, Shape input) const {
    const std::uint32_t j = n.inputs[k];
    throw Error(std::string(n.op) + " (tape entry " + std::to_string(index) + "): its backward left input " +
                std::to_string(k) + "'s gradient (tape entry " + std::to_string(j) + ", " + nodes_[j].op + ") " +
                to_string(left) + ", but that input is " + to_string(input) +
                ": add into the sink Tape::grad_of gives, do not assign it");
}

// The gradients an entry running its own code may have replaced, looked up as grad_of does
// (sized when first written), and refused if another size (one added to, or the step's own).
template <class T>
void Tape<T>::point_at_entries_grads(FlatStep<T>& step, std::uint32_t index, const bool* overwrite) {
    auto buffer = [&](std::uint32_t entry, bool first) {
        Node<T>& n = nodes_[entry];
        Matrix<T>& g = grad_buffer(n);
        if (first) ensure_shape(g, shape_of(value_of(n)));
        if (g.size() != step.n)
            throw Error("backward: the gradient of tape entry " + std::to_string(entry) + " (" + n.op + ") is " +
                        to_string(shape_of(g)) + " but " + std::to_string(step.n) + " elements were recorded" +
                        ": an op replaced it instead of adding to it (write gradients through Tape::grad_of)");
        return g.data();
    };
    if (step.grads_from_entries & 4) step.gy = buffer(index, false);
    for (std::uint32_t k = 0; k < step.arity; ++k)
        if ((step.grads_from_entries >> k) & 1) step.gx[k] = buffer(step.input[k], overwrite[k]);
}

// Anomaly detection reads the entries' own buffers: what a Replay keeps in its arena instead
// (autodiff/replay.cpp) is copied there first, the step's value after its forward and its
// inputs' gradients after its backward (copying a value again in the sweep is harmless).
template <class T>
void Tape<T>::copy_owned_buffers_back(const FlatStep<T>& step, std::uint32_t index) {
    Node<T>& n = nodes_[index];
    if (n.replay_owned & Node<T>::replay_value) std::copy(step.y, step.y + step.n, own_value(n));
    for (std::uint32_t k = 0; k < step.arity; ++k) {
        Node<T>& in = nodes_[step.input[k]];
        if (!(in.replay_owned & Node<T>::replay_grad) || step.gx[k] == nullptr) continue;
        if (!in.in_line()) ensure_shape(in.grad, shape_of(in.value));
        std::copy(step.gx[k], step.gx[k] + step.n, own_grad(in));
    }
}

// Leaves' gradients may live elsewhere since the last sweep (a parameter's grad replaced, or
// started afresh by start_backward): looked up as the sweep reaches the step that adds to one.
template <class T>
void Tape<T>::resolve_leaf_grad(FlatStep<T>& step, std::uint32_t side, std::uint32_t leaf) {
    Node<T>& n = nodes_[leaf];
    Matrix<T>& g = grad_buffer(n);
    if (!(n.parameter && accumulate_into_parameters_)) ensure_shape(g, shape_of(value_of(n)));
    repoint(step.gx[side], g.data());
}

template <class T>
void Tape<T>::find_final_leaves(std::uint32_t output) {
    final_leaves_.clear();
    for (std::uint32_t i = 0; i <= output; ++i)
        // Not a parameter recorded under NoGrad: no gradient reaches it, and it may be gone.
        if (nodes_[i].parameter && nodes_[i].requires_grad) final_leaves_.emplace_back(nodes_[i].parameter, i);
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

// Ops read parameters (and constant_refs) in place: one destroyed, resized or changed in
// place since it was recorded would make backward read freed memory, read past the end of
// its buffers, or compute gradients from values the forward did not use.
template <class T>
void Tape<T>::check_in_place_unchanged(std::uint32_t i) const {
    const Node<T>& n = nodes_[i];
    if (!n.reads_in_place()) return;  // a NoGrad entry reused for another op
    check_in_place_readable(i, "backward");
    check_parameter_grad(n, i);
    const NodeExtras<T>& leaf = n.in_place_record();
    if (n.parameter == nullptr || n.parameter->version_ == leaf.parameter_version) return;
    throw Error("backward: parameter '" + n.parameter->name + "' (tape entry " + std::to_string(i) +
                ") was modified in place after it was recorded (version " + std::to_string(n.parameter->version_) +
                " now, " + std::to_string(leaf.parameter_version) +
                " when recorded): its gradient would not match the forward. Call backward() before the "
                "optimizer's step(), or reset() and record again");
}

// Its gradient is added to where it lives: one replaced by another shape since (by hand,
// or by another tape's parameter() after the value was resized and back) would be indexed
// out of bounds. An empty one is a gradient not started yet. One recorded under NoGrad gets
// no gradient: its own is none of this backward's business.
template <class T>
void Tape<T>::start_or_reject_parameter_grad(const Node<T>& n, std::uint32_t i) const {
    const Shape recorded = n.in_place_record().recorded_shape;
    if (n.parameter->grad.size() != 0)
        throw Error("backward: parameter '" + n.parameter->name + "' (tape entry " + std::to_string(i) + ") is " +
                    to_string(recorded) + " but its grad is " + to_string(shape_of(n.parameter->grad)) +
                    ": a gradient is added to it in place; call zero_grad() to give it the parameter's shape");
    n.parameter->zero_grad();
}

// Still alive (a parameter) and of the shape it was recorded with: what reading it in place needs.
template <class T>
void Tape<T>::check_in_place_readable(std::uint32_t i, const char* op) const {
    const Node<T>& n = nodes_[i];
    if (!n.reads_in_place() || in_place_readable(n)) return;
    // What is wrong, in the words of the checks that read values in place:
    if (n.parameter != nullptr) {
        try {
            parameter_value(n);
        } catch (const Error& gone) {  // say which op found it gone (a user's, whose forward it may have been)
            throw Error(std::string(op) + ": " + gone.what());
        }
    }
    check_in_place_shape(n, i, op);
}

template <class T>
Matrix<T> Tape<T>::gradient_of(const Parameter<T>& p) const {
    Matrix<T> total = xt::zeros<T>(p.value.shape());
    for (std::size_t i = 0; i < size_; ++i) {
        const Node<T>& n = nodes_[i];
        // By identity as well as address: a parameter made where a recorded one died is another.
        if (n.parameter != &p || n.leaf().parameter_identity != p.registry_.identity() || !(refs_[i] & started)) continue;
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
void Tape<T>::check_new_value(std::uint32_t index) {
    try {
        check_finite_value(index);
    } catch (...) {
        if (!(refs_[index] & pinned)) recycle(index);  // under NoGrad: no handle will ever release it
        throw;
    }
}

// A gradient that adds to a parameter's: one already non-finite (an earlier step's) would be
// blamed on the first backward to add to it.
template <class T>
void Tape<T>::check_finite_accumulated_grad(std::uint32_t index) const {
    const Node<T>& n = nodes_[index];
    if (n.parameter == nullptr || !accumulate_into_parameters_ || !n.requires_grad) return;
    const std::string where = first_non_finite(n.parameter->grad);
    if (!where.empty())
        throw AnomalyError("anomaly: parameter '" + n.parameter->name + "' (tape entry " + std::to_string(index) +
                           ") holds a non-finite gradient before this backward (" + where +
                           "): left from an earlier step; zero_grad() it");
}

template <class T>
void Tape<T>::check_finite_input_grads(const Node<T>& n, std::uint32_t index) const {
    for (int i = 0; i < n.arity; ++i) {
        const Node<T>& in = nodes_[n.inputs[i]];
        // An input the op gave no gradient (a user's op may leave one out) holds none of this
        // sweep: an inline one's block, or an earlier recording's matrix, holds anything.
        if (!in.requires_grad || !(refs_[n.inputs[i]] & started)) continue;
        const Matrix<T>& g = in.in_line() ? materialized_grad(in) : grad_buffer(in);
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
