#include "autodiff/replay.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>

#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// Entries whose recording draws fresh random numbers (and advances the caller's generator):
// run again, they would repeat the recorded draw instead of making a new one.
bool draws_random_numbers(const char* op) { return std::strcmp(op, "dropout") == 0; }

}  // namespace

template <class T>
Replay<T>::Replay(Tape<T>& tape, const Var<T>& output, const std::vector<Var<T>>& keep)
    : tape_(tape), output_(output), slot_(tape.slot_) {
    typename Tape<T>::ExclusiveUse one_thread(tape, "Replay");
    generation_ = tape.generation_;  // read once the tape is this thread's: another may reset it
    size_ = tape.size_;
    tape.check(output, "Replay");
    for (const Var<T>& v : keep) tape.check(v, "Replay (a handle to keep)");
    // The output and the kept handles are read after each run. One computed under NoGrad is
    // pinned only if an entry of the step reads it (refused below), so otherwise it was left
    // out of the replay and kept the first recording's value: forward() and every kept
    // metric returned stale numbers without a word (found by an attack).
    auto require_recorded_with_gradients = [&](const Var<T>& v, const char* what) {
        const Node<T>& n = tape.nodes_[v.index()];
        if (n.recorded_under_nograd() && n.arity > 0)
            throw Error("Replay: " + std::string(what) + " (tape entry " + std::to_string(v.index()) + ", " + n.op +
                        ") was computed under NoGrad: a replay can neither compute it again (its inputs were not "
                        "kept: released under NoGrad, they may hold other values now) nor keep its value (it would "
                        "go stale); record it with gradients enabled");
    };
    require_recorded_with_gradients(output, "the output");
    for (const Var<T>& v : keep) require_recorded_with_gradients(v, "a handle to keep");
    if (tape.replay_owner_.load() != nullptr)
        throw Error("Replay: another Replay of this tape keeps some of its entries' values in memory of its own; "
                    "destroy it (or reset() the tape and record again) before making another");
    for (std::size_t i = 0; i < size_; ++i) {
        const Node<T>& n = tape.nodes_[i];
        // Entries recorded under NoGrad that no entry of the step reads (pinned marks those
        // one does) are not part of the step: released ones may be reused for anything.
        if (!(tape.refs_[i] & Tape<T>::pinned)) continue;
        if (n.recorded_under_nograd() && n.arity > 0)
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
        if (n.reads_in_place()) in_place_.push_back(static_cast<std::uint32_t>(i));
        if (!n.reads_in_place() && n.arity == 0) leaves_.push_back(static_cast<std::uint32_t>(i));
        if (n.arity > 0) computed_.push_back(static_cast<std::uint32_t>(i));
        if (n.arity > 0 && !(n.flags & Node<T>::library_code)) {
            foreign_code_ = true;
            foreign_shapes_.push_back({static_cast<std::uint32_t>(i), shape_of(n.value)});
        }
    }
    if (tape.value(output.index()).size() != 1)
        throw Error("Replay: the output (" + std::string(tape.nodes_[output.index()].op) + ", " +
                    to_string(shape_of(tape.value(output.index()))) +
                    ") is not 1x1: a replay differentiates a scalar loss (sum or mean it first)");
    plan_flat_steps(keep);
    tape.live_replays_.fetch_add(1);  // last: a constructor that throws is not counted
}

// Which recorded entries run as flat steps, then their steps. Built-in entries running their
// own code read and write their buffers in place, but a user's op made with record_op may
// assign new matrices: so the buffers such an entry produces, or whose gradient it adds to,
// are looked up on each run instead of kept (FlatPlan::computed_values, grads_from_entries).
template <class T>
void Replay<T>::plan_flat_steps(const std::vector<Var<T>>& keep) {
    plan_.step_of.assign(size_, -1);
    std::vector<FlatOp<T>> ops(size_);
    std::pair<ForwardFn<T>, FlatOp<T>> last{nullptr, {}};  // entries of one op come in runs: looked up once
    for (std::uint32_t i : computed_) {
        const Node<T>& n = tape_.nodes_[i];
        if (last.first != n.forward) last = {n.forward, detail::flat_kernels_of(n.forward)};
        // The library's entries only: a user's record_op may pair a library op's forward with
        // a backward of its own (a straight-through estimator), which must run (found by an attack).
        if (last.second.kernels.forward != nullptr && (n.flags & Node<T>::library_code) && flat_shapes(n))
            ops[i] = last.second;
    }
    // Values read by an entry that runs its own code, and gradients it adds to, stay in their
    // entries; so do the output's and those the caller keeps.
    std::vector<bool> read_by_own_code(size_, false), value_kept(size_, false);
    for (std::uint32_t i : computed_) {
        const Node<T>& n = tape_.nodes_[i];
        if (ops[i].kernels.forward != nullptr) continue;
        for (std::uint8_t k = 0; k < n.arity; ++k) {
            value_kept[n.inputs[k]] = true;
            if (n.backward != nullptr) read_by_own_code[n.inputs[k]] = true;
        }
    }
    for (std::uint32_t i : computed_)
        if (ops[i].kernels.forward != nullptr) plan_flat_step(i, ops[i].kernels, read_by_own_code);
    std::sort(plan_.computed_values.begin(), plan_.computed_values.end(),
              [](const auto& a, const auto& b) { return a.entry < b.entry; });
    std::vector<bool> grad_kept = read_by_own_code;
    value_kept[output_.index()] = grad_kept[output_.index()] = true;
    for (const Var<T>& v : keep) value_kept[v.index()] = grad_kept[v.index()] = true;
    plan_memory(ops, value_kept, grad_kept);
}

namespace {

// Slots of an arena handed out and given back by size (a tape's elementwise entries come in
// a few sizes), each rounded up to whole cache lines.
template <class T>
class ArenaSlots {
public:
    std::size_t take(std::uint32_t n) {
        for (auto& [size, free] : free_)
            if (size == n && !free.empty()) {
                const std::size_t at = free.back();
                free.pop_back();
                return at;
            }
        const std::size_t at = top_;
        top_ += (n + per_line - 1) / per_line * per_line;
        return at;
    }
    void give(std::uint32_t n, std::size_t at) {
        for (auto& [size, free] : free_)
            if (size == n) return free.push_back(at);
        free_.push_back({n, {at}});
    }
    std::size_t size() const { return top_; }

private:
    static constexpr std::size_t per_line = 64 / sizeof(T) > 0 ? 64 / sizeof(T) : 1;
    std::vector<std::pair<std::uint32_t, std::vector<std::size_t>>> free_;
    std::size_t top_ = 0;
};

constexpr std::size_t unplaced = SIZE_MAX;

}  // namespace

// Where each flat step's value and gradient live. A value that no backward reads is live
// from its forward to its last reader's; a gradient from its first contribution (by its
// last consumer, the sweep going backwards) to its own entry's backward. Such values and
// gradients get slots of plan_.arena, reused once they are dead: a recurrent tape's
// intermediates then cycle through a few cached slots where each entry had two buffers of
// its own. Values are dead before the sweep starts, so both share the one arena. The values
// that only flat steps read but a backward needs stay to the end of the sweep, densely.
template <class T>
void Replay<T>::plan_memory(const std::vector<FlatOp<T>>& ops, const std::vector<bool>& value_kept,
                            const std::vector<bool>& grad_kept) {
    auto reads = [&](std::uint32_t i) { return ops[i].reads; };
    std::vector<std::uint32_t> value_end(size_, 0), grad_end(size_, 0);
    std::vector<bool> read_backward(size_, false);
    for (std::uint32_t c : computed_) {
        const std::int32_t f = plan_.step_of[c];
        if (f < 0) continue;
        const FlatStep<T>& step = plan_.steps[f];
        const bool has_backward = step.gy != nullptr;
        value_end[c] = grad_end[c] = c;
        if (has_backward && (reads(c) & backward_reads::output)) read_backward[c] = true;
        for (std::uint32_t k = 0; k < step.arity; ++k) {
            const std::uint32_t j = step.input[k];
            value_end[j] = std::max(value_end[j], c);
            if (has_backward && ((reads(c) >> k) & 1)) read_backward[j] = true;
            if (has_backward) grad_end[j] = std::max(grad_end[j], c);
        }
    }
    // Values a backward reads live to the end of the sweep: they get slots of their own, in a
    // region after the shared one, in recording order (a dense stream, read back in reverse).
    std::vector<bool> value_pooled(size_, false), grad_pooled(size_, false), value_lasting(size_, false);
    for (std::uint32_t c : computed_) {
        const std::int32_t f = plan_.step_of[c];
        if (f < 0 || plan_.steps[f].n == 0) continue;
        value_pooled[c] = !value_kept[c] && !read_backward[c];
        value_lasting[c] = !value_kept[c] && read_backward[c];
        grad_pooled[c] = !grad_kept[c] && plan_.steps[f].gy != nullptr;
    }
    const std::vector<std::uint32_t> fused_parts = fuse_affine_steps(ops, value_pooled, grad_pooled, value_end, grad_end);
    std::vector<std::uint32_t> adds;  // the affine steps' add steps, which leave the plan at the end
    for (std::size_t k = 1; k < fused_parts.size(); k += 2) adds.push_back(static_cast<std::uint32_t>(plan_.step_of[fused_parts[k]]));
    std::vector<std::size_t> value_at(size_, unplaced), grad_at(size_, unplaced);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> value_dies, grad_starts;  // (when, entry)
    std::vector<std::uint32_t> lasting;
    for (std::uint32_t c : computed_) {
        if (value_pooled[c]) value_dies.push_back({value_end[c], c});
        if (value_lasting[c]) lasting.push_back(c);
        if (grad_pooled[c]) grad_starts.push_back({grad_end[c], c});
    }
    if (value_dies.empty() && grad_starts.empty() && lasting.empty()) return;
    auto size_of = [&](std::uint32_t i) { return plan_.steps[plan_.step_of[i]].n; };
    // Forward, in recording order: an entry's slot is taken before its forward and its
    // inputs' are given back after it, so that a step never writes over what it reads.
    std::sort(value_dies.begin(), value_dies.end());
    ArenaSlots<T> values;
    auto dying = value_dies.begin();
    for (std::uint32_t i : computed_) {
        if (value_pooled[i]) value_at[i] = values.take(size_of(i));
        for (; dying != value_dies.end() && dying->first <= i; ++dying) values.give(size_of(dying->second), value_at[dying->second]);
    }
    // The sweep, in reverse: an entry's gradient slot is taken when its last consumer's
    // backward runs (before that backward gives its own back) and given back after its own.
    std::sort(grad_starts.begin(), grad_starts.end(), std::greater<>());
    ArenaSlots<T> grads;
    auto starting = grad_starts.begin();
    for (auto c = computed_.rbegin(); c != computed_.rend(); ++c) {
        for (; starting != grad_starts.end() && starting->first >= *c; ++starting)
            grad_at[starting->second] = grads.take(size_of(starting->second));
        if (grad_pooled[*c]) grads.give(size_of(*c), grad_at[*c]);
    }
    ArenaSlots<T> kept;
    const std::size_t shared = std::max(values.size(), grads.size());
    for (std::uint32_t c : lasting) value_at[c] = shared + kept.take(size_of(c));
    // Another Replay of the tape would run its entries into their own buffers, and its first
    // run would mark them readable again, while this one's arena holds their latest values:
    // a stale value read without a word (found by an attack).
    if (tape_.live_replays_.load() != 0)
        throw Error("Replay: another Replay of this tape is alive, and this one would keep some of the tape's "
                    "intermediates in memory of its own, which the other's runs would not update; destroy the other "
                    "first, or pass every intermediate you read in this one's keep list");
    plan_.arena.assign(shared + kept.size(), T(0));
    // Nothing may throw once the tape names this Replay its owner: a constructor that throws
    // runs no destructor, which would have let go of the tape.
    owned_.reserve(computed_.size());
    tape_.held_by_replay_ = true;
    tape_.replay_owner_.store(this);
    T* const arena = plan_.arena.data();
    for (std::uint32_t c : computed_) {
        const std::int32_t f = plan_.step_of[c];
        if (f < 0) continue;
        FlatStep<T>& step = plan_.steps[f];
        Node<T>& n = tape_.nodes_[c];
        const std::uint8_t owned = (value_at[c] != unplaced ? Node<T>::replay_value : 0) |
                                   (grad_at[c] != unplaced ? Node<T>::replay_grad : 0);
        if (value_at[c] != unplaced) step.y = arena + value_at[c];
        if (grad_at[c] != unplaced) step.gy = arena + grad_at[c];
        if (owned != 0) n.replay_owned |= owned, owned_.push_back({c, owned});
        for (std::uint32_t k = 0; k < step.arity; ++k) {
            const std::uint32_t j = step.input[k];
            if (value_at[j] != unplaced) step.x[k] = arena + value_at[j];
            if (grad_at[j] != unplaced && step.gx[k] != nullptr) step.gx[k] = arena + grad_at[j];
        }
    }
    compact_affine_steps(adds);
    for (std::uint32_t part : fused_parts) plan_.step_of[part] = FlatPlan<T>::fused_away;
}

// An activation whose derivative reads no input, recorded right after an add of a mul's
// value (sigmoid(x * w + b)), becomes one affine step (FlatOp::affine) when nothing else reads
// the mul's and the add's values or gradients. The parts' inputs are then read, and their
// gradients written, when the affine step runs: their lifetimes reach it.
template <class T>
std::vector<std::uint32_t> Replay<T>::fuse_affine_steps(const std::vector<FlatOp<T>>& ops, const std::vector<bool>& value_pooled,
                                  const std::vector<bool>& grad_pooled, std::vector<std::uint32_t>& value_end,
                                  std::vector<std::uint32_t>& grad_end) {
    std::vector<std::uint8_t> readers(size_, 0);  // 0, 1 or 2 (more)
    for (std::uint32_t c : computed_)
        for (std::uint8_t k = 0; k < tape_.nodes_[c].arity; ++k) {
            std::uint8_t& r = readers[tape_.nodes_[c].inputs[k]];
            r = static_cast<std::uint8_t>(std::min(r + 1, 2));
        }
    auto private_to = [&](std::uint32_t part) {  // its value and gradient read by the next entry alone
        return readers[part] == 1 && value_pooled[part] && (grad_pooled[part] || !tape_.nodes_[part].requires_grad);
    };
    std::vector<std::uint32_t> parts;  // the mul and add entries of the affine steps
    for (std::uint32_t u : computed_) {
        const std::int32_t f = plan_.step_of[u];
        if (f < 2 || ops[u].affine.forward == nullptr) continue;
        const std::uint32_t a = u - 1, m = u - 2;
        if (plan_.step_of[a] != f - 1 || plan_.step_of[m] != f - 2) continue;
        const Node<T>&add = tape_.nodes_[a], &mul = tape_.nodes_[m];
        if (std::strcmp(add.op, "add") != 0 || std::strcmp(mul.op, "mul") != 0) continue;
        if (tape_.nodes_[u].inputs[0] != a || (add.inputs[0] != m && add.inputs[1] != m)) continue;
        if (!private_to(m) || !private_to(a)) continue;
        FlatStep<T>& step = plan_.steps[f];
        const FlatStep<T>&mul_step = plan_.steps[f - 2], &add_step = plan_.steps[f - 1];
        // The add's b becomes this step's side 1 (FlatStep::fused); the add's step goes once
        // every pointer is placed (compact_affine_steps).
        const int side = add.inputs[0] == m ? 1 : 0;
        step.kernels = ops[u].affine;
        step.fused = 1;
        step.arity = 2;
        step.x[1] = add_step.x[side];
        step.gx[1] = add_step.gx[side];
        step.input[1] = add_step.input[side];
        step.parameters = static_cast<std::uint8_t>(step.parameters | (((add_step.parameters >> side) & 1u) << 1));
        step.grads_from_entries =
            static_cast<std::uint8_t>(step.grads_from_entries | (((add_step.grads_from_entries >> side) & 1u) << 1));
        parts.push_back(m), parts.push_back(a);
        for (std::uint32_t j : {mul_step.input[0], mul_step.input[1], add_step.input[side]}) {
            value_end[j] = std::max(value_end[j], u);
            grad_end[j] = std::max(grad_end[j], u);
        }
    }
    return parts;
}

// The add steps of the affine steps leave the plan (their b is the activation's side 1 now),
// and every index of a step is renumbered: a long recurrent tape's plan then holds two steps
// per gate instead of three. Looked-up inputs of an add's b side move to the activation's.
// `adds`: the add steps, in order. Allocates nothing: it runs once the tape names this Replay
// its owner, where nothing may throw.
template <class T>
void Replay<T>::compact_affine_steps(const std::vector<std::uint32_t>& adds) noexcept {
    if (adds.empty()) return;
    // An add's new number is its activation's, the step after it.
    auto renumbered = [&](std::uint32_t f) {
        return f - static_cast<std::uint32_t>(std::lower_bound(adds.begin(), adds.end(), f) - adds.begin());
    };
    auto is_add = [&](std::uint32_t f) { return std::binary_search(adds.begin(), adds.end(), f); };
    std::size_t next = 0;
    auto add = adds.begin();
    for (std::size_t f = 0; f < plan_.steps.size(); ++f) {
        if (add != adds.end() && *add == f) {
            ++add;
            continue;
        }
        plan_.steps[next++] = plan_.steps[f];
    }
    plan_.steps.resize(next);  // smaller: nothing allocated
    for (std::int32_t& f : plan_.step_of)
        if (f >= 0) f = static_cast<std::int32_t>(renumbered(static_cast<std::uint32_t>(f)));
    for (auto* list : {&plan_.in_place_values, &plan_.leaf_grads, &plan_.computed_values})
        for (typename FlatPlan<T>::LookedUp& read : *list) {
            if (is_add(read.step)) read.side = 1;  // b: the mul's value is never looked up (it is the replay's)
            read.step = renumbered(read.step);
        }
}

// Inputs and output of the output's size as recorded (a parameter's or constant_ref's value
// may be another size now, which the run then refuses), and elements counted in 32 bits.
template <class T>
bool Replay<T>::flat_shapes(const Node<T>& n) const {
    const std::size_t size = Tape<T>::own_size(n);
    if (n.arity > 2 || size > UINT32_MAX) return false;
    for (std::uint8_t k = 0; k < n.arity; ++k) {
        const Node<T>& in = tape_.nodes_[n.inputs[k]];
        const std::size_t recorded = in.reads_in_place() ? in.leaf().recorded_shape.size() : Tape<T>::own_size(in);
        if (recorded != size) return false;  // broadcast: the entry's own code
    }
    return true;
}

// Without taking the tape (a destructor cannot throw "used by another thread"): the owner is
// an atomic the tape's reset() clears, so letting go of it races with nothing.
// Only while the recording it was made of is current: reset() already let go of it, and a
// tape destroyed first (a struct holding the tape before the Replay) is not touched (the
// registry says so without reading the tape: found by an attack, a write to freed memory).
template <class T>
Replay<T>::~Replay() {
    if (!tape_alive()) return;
    const void* self = this;
    tape_.replay_owner_.compare_exchange_strong(self, nullptr);
    std::uint32_t alive = tape_.live_replays_.load();
    while (alive > 0 && !tape_.live_replays_.compare_exchange_weak(alive, alive - 1)) {}
}

template <class T>
bool Replay<T>::tape_alive() const {
    return detail::TapeRegistry::generation(slot_).load(std::memory_order_acquire) == generation_;
}

// Before anything reads the tape, which may be gone (check_unchanged then says more).
template <class T>
void Replay<T>::require_tape(const char* op) const {
    if (!tape_alive())
        throw Error(std::string(op) + ": the tape was reset (or destroyed) after this step was recorded; record the "
                    "step again and make a new Replay");
}

// An entry's FlatStep: its buffers' addresses, which stay put while the tape is neither
// reset nor recorded on (check_unchanged), except where plan_flat_steps says. Gradients are
// sized now, so that a flat step can write into them.
template <class T>
void Replay<T>::plan_flat_step(std::uint32_t index, FlatKernels<T> kernels, const std::vector<bool>& read_by_own_code) {
    Node<T>& n = tape_.nodes_[index];
    FlatStep<T> step;
    const auto at = static_cast<std::uint32_t>(plan_.steps.size());
    step.kernels = kernels;
    step.arity = n.arity;
    step.n = static_cast<std::uint32_t>(Tape<T>::own_size(n));
    step.s = n.scalar;
    step.s2 = n.scalar2();
    step.y = Tape<T>::own_value(n);
    // An inline gradient (Node::in_line) stays where it is: an entry running its own code adds
    // to it through Tape::grad_of, which the sweep then adds to the block the step reads.
    if (n.requires_grad) {
        if (!n.in_line()) ensure_shape(n.grad, shape_of(n.value));
        step.gy = Tape<T>::own_grad(n);
        if (read_by_own_code[index] && !n.in_line()) step.grads_from_entries |= 4;
    }
    for (std::uint32_t k = 0; k < n.arity; ++k) {
        const std::uint32_t j = n.inputs[k];
        Node<T>& in = tape_.nodes_[j];
        const bool runs_own_code = in.arity > 0 && plan_.step_of[j] < 0;
        step.input[k] = j;
        if (in.parameter != nullptr) step.parameters |= std::uint8_t(1u << k);
        if (in.reads_in_place())
            plan_.in_place_values.push_back({at, k, j});
        else if (runs_own_code)
            plan_.computed_values.push_back({at, k, j});
        else
            step.x[k] = Tape<T>::own_value(in);
        if (!n.requires_grad || !in.requires_grad) continue;
        if (in.in_line()) {
            step.gx[k] = in.inline_grad();
        } else if (runs_own_code || read_by_own_code[j]) {
            step.grads_from_entries |= std::uint8_t(1u << k);
        } else if (in.arity == 0) {
            plan_.leaf_grads.push_back({at, k, j});
        } else {
            ensure_shape(in.grad, shape_of(in.value));
            step.gx[k] = in.grad.data();
        }
    }
    plan_.steps.push_back(step);
    plan_.step_of[index] = static_cast<std::int32_t>(at);
}

template <class T>
void Replay<T>::reject_moved_buffer(std::uint32_t index, const char* what) const {
    throw Error("Replay: tape entry " + std::to_string(index) + " (" + tape_.nodes_[index].op + ") left a " + what +
                " of another size than it was recorded with (" + to_string(tape_.value_shape(index)) +
                " now): an op's forward must make the shape it recorded");
}

template <class T>
void Replay<T>::check_unchanged(const char* op) const {
    if (tape_.generation_ != generation_ || tape_.size_ != size_)
        throw Error(std::string(op) + ": the tape was " + (tape_.generation_ != generation_ ? "reset" : "recorded on") +
                    " after this step was recorded; record the step again and make a new Replay");
}

// Anomaly detection names the first entry that made a non-finite value: an affine step's
// parts run on their own, with their plain kernels, each checked.
template <class T>
void Replay<T>::forward_parts_checked(const FlatStep<T>& step, std::uint32_t index) {
    const AffineParts<T> parts = tape_.affine_parts(step, index);
    const FlatStep<T>* in_order[3] = {&parts.mul, &parts.add, &parts.own};
    for (std::uint32_t part = 0; part < 3; ++part) {
        const std::uint32_t entry = index - 2 + part;
        in_order[part]->kernels.forward(*in_order[part]);
        tape_.copy_owned_buffers_back(*in_order[part], entry);
        tape_.check_finite_value(entry);
    }
}

template <class T>
void Replay<T>::forward() {
    require_tape("Replay::forward");
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
    // A leaf's address is written into a step just before the step runs (with the parts of
    // an affine step), and only if it moved: a separate pass would read and dirty a long
    // tape's whole plan once more.
    auto in_place = plan_.in_place_values.begin();  // in the order of their steps
    auto produced = plan_.computed_values.begin();  // by producer, in the order they run
    auto foreign = foreign_shapes_.begin();          // likewise
    for (std::uint32_t i : computed_) {
        tape_.refs_[i] &= ~Tape<T>::started;
        const std::int32_t flat = plan_.step_of[i];
        if (flat >= 0) {
            for (; in_place != plan_.in_place_values.end() && in_place->step <= std::uint32_t(flat); ++in_place)
                repoint(plan_.steps[in_place->step].x[in_place->side], tape_.value(in_place->entry).data());
            const FlatStep<T>& step = plan_.steps[flat];
            if (step.fused != 0 && tape_.detect_anomaly_) {
                forward_parts_checked(step, i);
            } else {
                step.kernels.forward(step);  // its entry is not read
                if (tape_.detect_anomaly_) tape_.copy_owned_buffers_back(step, i);
            }
        } else if (flat == FlatPlan<T>::fused_away) {
            continue;  // run (and checked) by the affine step after it
        } else {
            Node<T>& n = tape_.nodes_[i];
            const bool users = !(n.flags & Node<T>::library_code);
            // A user's forward may make its value another shape, which the entries reading it
            // trust (Tape::record refuses that when it records): each run starts it from the
            // recorded shape, as recording does, and refuses another.
            if (users) {
                for (; foreign != foreign_shapes_.end() && foreign->first < i; ++foreign) {}
                ensure_shape(n.value, foreign->second);
            }
            n.forward(tape_, n);
            if (users) {
                if (shape_of(n.value) != foreign->second) Tape<T>::reject_value_shape(n, foreign->second);
                // It may have changed, resized or destroyed a parameter or a constant_ref's
                // matrix, which the entries after it read in place (or given one a new buffer:
                // see the end of the forward).
                for (std::uint32_t j : in_place_) tape_.check_in_place_readable(j, n.op);
            }
            for (; produced != plan_.computed_values.end() && produced->entry == i; ++produced) {
                FlatStep<T>& reader = plan_.steps[produced->step];
                if (Tape<T>::own_size(n) != reader.n) reject_moved_buffer(i, "value");
                repoint(reader.x[produced->side], Tape<T>::own_value(n));
            }
        }
        if (tape_.detect_anomaly_) tape_.check_finite_value(i);
    }
    // A user's forward may have given a parameter or a constant_ref's matrix a new buffer of the
    // same shape (p.value = clip(p.value)): the flat steps that ran before it read it again in
    // the sweep, where it is now, as a fresh recording would.
    if (foreign_code_) tape_.point_at_in_place_values(plan_);
    if (!ownership_settled_) settle_ownership();
}

// Until its first forward, the entries an earlier Replay of the tape kept (gone now) still
// hold stale values: they stay refused. After it, every entry this one does not keep in its
// arena holds this run's value, and gradients are started afresh by the sweep.
template <class T>
void Replay<T>::settle_ownership() {
    for (std::size_t i = 0; i < size_; ++i) tape_.nodes_[i].replay_owned = 0;
    for (const auto& [entry, owned] : owned_) tape_.nodes_[entry].replay_owned = owned;
    ownership_settled_ = true;
}

// Locked from the forward to the value read after the sweep: another thread cannot come
// between them (nor change the values the sweep reads).
template <class T>
T Replay<T>::run() {
    require_tape("Replay::run");
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::run");
    forward_locked();
    tape_.swept_ = false;
    // Its forward checked every parameter and constant_ref (rerecord_in_place); if only the
    // library's code ran since, the backward need not check them again (~60 ns of an MLP's
    // replayed step of 2.3 us), only their gradients.
    tape_.backward_from_scalar(output_, &plan_, /*in_place_rerecorded=*/!foreign_code_);
    return tape_.value(output_.index())(0, 0);
}

template <class T>
bool Replay<T>::inputs_readable() {
    if (!tape_alive()) return false;
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::inputs_readable");
    for (std::uint32_t i : in_place_)
        if (!tape_.in_place_readable(tape_.nodes_[i])) return false;
    return true;
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
    require_tape("Replay::set_labels");
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::set_labels");
    Node<T>& n = loss_entry(loss, true);
    ops::require_labels("Replay::set_labels", shape_of(tape_.input(n, 0)), classes);
    n.labels() = classes;  // same length: copy-assign reuses the capacity
}

template <class T>
void Replay<T>::set_targets(const Var<T>& loss, const Matrix<T>& Y) {
    require_tape("Replay::set_targets");
    typename Tape<T>::ExclusiveUse one_thread(tape_, "Replay::set_targets");
    Node<T>& n = loss_entry(loss, false);
    if (n.arity == 2)  // its targets are an input, read in place or computed: refilled where they come from
        ops::fail("Replay::set_targets", "this softmax_cross_entropy takes its targets as a handle (tape entry " +
                                             std::to_string(n.inputs[1]) + ", " + tape_.nodes_[n.inputs[1]].op +
                                             "): refill the matrix it reads (constant_ref) instead");
    if (shape_of(Y) != shape_of(n.targets()))
        ops::fail("Replay::set_targets", "Y is " + to_string(shape_of(Y)) + " but the logits are " +
                                             to_string(shape_of(n.targets())) + " (they must have the same shape)");
    ops::require_finite("Replay::set_targets", "Y", Y);
    n.copy_targets(Y);
}

template class Replay<float>;
template class Replay<double>;

}  // namespace autodiff
