#pragma once
// The tape: ops are recorded in the order they run, so one reverse loop over the entries
// is a valid order for the backward pass (no graph search, no recursion).
//
// Memory: the tape owns every recorded value and gradient. reset() keeps the buffers, so
// recording the same computation again with the same shapes allocates nothing.
// A Var is a small handle (tape, index, generation); one used after reset() throws.
// One Tape belongs to one thread at a time: a second thread recording, sweeping, resetting
// it or changing a setting (the set_ calls) while the first does throws (Tape::ExclusiveUse),
// as does a setting changed from inside the tape's own sweep (a gradient-ready hook's). A
// NoGrad scope holds its tape for the thread that made it, as PyTorch's no_grad is a
// thread's own: while it lives, another thread's use throws too, and the scope's own ops
// skip the per-op exclusion.
//
// Under NoGrad nothing is swept, so an entry no handle refers to any more is never read
// again: handles of entries recorded under NoGrad count their copies, and the tape reuses
// an entry (and its buffers) once the last of them is gone. An evaluation loop therefore
// holds only the values it still refers to, whatever the number of steps.

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/entry_memory.hpp"
#include "autodiff/no_overlap.hpp"

#include "autodiff/error.hpp"
#include "autodiff/matrix.hpp"
#include "autodiff/registry_identity.hpp"
#include "autodiff/tape_registry.hpp"

namespace autodiff {

// double by default (the notebook is float64); float works everywhere too.
template <class T = double>
class Tape;

/// A trainable array that outlives any one tape: recorded as a leaf without being copied;
/// its gradient accumulates across backward() calls until zero_grad(), as in PyTorch.
///
/// A tape reads a parameter in place, so it must stay alive and where it is until the tape
/// is reset: one destroyed or moved from after it was recorded makes backward() and
/// Var::value() throw (each Parameter has an identity in the registry that the tape checks).
/// Code that changes `value` in place after a recording calls bump_version(), as the
/// optimizers do; backward() then refuses to use the stale recording, as PyTorch's version
/// counter does.
template <class T>
class ParameterIdentity;

template <class T = double>
class Parameter {
public:
    explicit Parameter(Matrix<T> initial, std::string name = "");
    /// A copy is a new parameter, with an identity of its own.
    Parameter(const Parameter& other);
    /// Takes over other's arrays; recordings of other become invalid (they throw).
    Parameter(Parameter&& other) noexcept;
    Parameter& operator=(const Parameter& other);
    Parameter& operator=(Parameter&& other) noexcept;
    ~Parameter();

    Matrix<T> value;
    Matrix<T> grad;
    std::string name;
    void zero_grad();
    Shape shape() const { return shape_of(value); }
    /// Says that `value` was changed in place: recordings made before now refuse backward().
    void bump_version() { ++version_; }
    /// How many times value was changed in place (bump_version) or assigned.
    std::uint64_t version() const { return version_; }

private:
    friend class Tape<T>;
    friend class ParameterIdentity<T>;
    detail::RegistryIdentity registry_;  // no slot once moved from
    std::uint64_t version_ = 0;
};

/// Throws autodiff::Error ("<who>: parameter 1 of 2 is a null pointer") unless every pointer in
/// `parameters` is one: each function taking a list of parameters reads every one it is given
/// (clip_grad_norm and value_and_grad crashed on a null one; found by an attack).
template <class T>
void require_no_null_parameter(const std::string& who, const std::vector<Parameter<T>*>& parameters) {
    for (std::size_t i = 0; i < parameters.size(); ++i)
        if (parameters[i] == nullptr)
            throw Error(who + ": parameter " + std::to_string(i) + " of " + std::to_string(parameters.size()) +
                        " is a null pointer");
}

/// What a holder of parameters by address keeps beside each (a Module's registered ones, an
/// optimizer's list): whether that object is still the parameter it was, asked of the
/// registry without touching the object. One destroyed, or moved from, since is then refused
/// by name instead of read in freed memory, as a tape refuses it.
template <class T = double>
class ParameterIdentity {
public:
    explicit ParameterIdentity(const Parameter<T>& p) : witness_(p.registry_.witness()) {}
    /// False for one moved from when this was made (it has no identity to witness).
    bool alive() const { return !witness_.empty() && witness_.still_holds(); }

private:
    detail::RegistryWitness witness_;
};

template <class T>
struct Node;

template <class T>
class Replay;

template <class T>
class NoGrad;

template <class T>
struct FlatPlan;  // autodiff/flat_step.hpp
namespace ops {
template <class T>
class HeldTape;  // autodiff/ops/checks.hpp
}
namespace detail {
template <class T>
class AccumulationRestore;  // autodiff/value_and_grad.hpp
}
template <class T>
struct FlatStep;
template <class T>
struct AffineParts;

// Reads the node's gradient (node.grad) and adds each input's share into that input.
template <class T>
using BackwardFn = void (*)(Tape<T>&, Node<T>&);

// Computes node.value (and whatever backward reads, in node.saved() and node.work()) from the node's
// inputs and the parameters stored in the node. Kept in the entry, so the tape can run the
// forward again over new input data without re-recording (replay).
template <class T>
using ForwardFn = void (*)(Tape<T>&, Node<T>&);

/// Called by backward() as soon as a parameter's gradient is final: the reverse sweep has
/// passed every entry that could add to it (for a parameter recorded several times, its
/// earliest leaf). Lets data-parallel training start reducing a gradient while the sweep
/// goes on. A plain function and a context pointer: no allocation, no std::function. It runs
/// inside the sweep, which holds the tape: a call it makes on that tape (a setter included)
/// throws, as an op's backward's does.
template <class T>
using GradientReadyFn = void (*)(void* context, Parameter<T>& parameter);

/// Whose a gradient-ready hook's context is, for an owner that may be destroyed before the
/// tape (a data-parallel sync, say): where its identity lives in the registry and what it
/// was. A tape then refuses to call the hook of an owner gone instead of calling into freed
/// memory. Empty (the default): the caller keeps the context alive.
class HookOwner {
public:
    HookOwner() = default;
    /// The owner of `identity`: a tape calls its hook only while it lives (and is not moved from).
    explicit HookOwner(const detail::RegistryIdentity& identity) : witness_(identity.witness()) {}
    /// The owner whose identity lives at `generation` (a registry slot) and was `identity`.
    HookOwner(const std::atomic<std::uint64_t>* generation, std::uint64_t identity) : witness_{generation, identity} {}
    bool alive() const { return witness_.empty() || witness_.still_holds(); }

private:
    detail::RegistryWitness witness_;
};

// One tape entry. Everything an op's backward reads lives here, so the entry is
// self-contained and its buffers are reused from one iteration to the next.
// What only some ops keep in their entry: kept apart (NodeExtras, allocated the first time
// such an op records into the entry, then reused with it), so that the entries of the ops
// that need none stay small: a recurrent model records hundreds of thousands of them.
template <class T>
struct NodeExtras {
    Matrix<T> saved;                  // what backward needs beyond inputs and output
    Matrix<T> targets;                // a loss's one-hot targets (copied: the caller's may go away)
    Labels labels;                    // a loss's class-index targets
    std::array<Matrix<T>, 2> work;    // workspaces, kept so that reuse does not reallocate
    std::array<std::uint32_t, 8> params{};  // an op's integer parameters (a slice's range, conv geometry)
    T scalar2{};                      // an op's second constant (clamp's upper bound, dropout's p, ...)
    // An entry that reads its value where it lives (a parameter's, or constant_ref's): few per
    // tape, and read through the parameter's identity check anyway.
    const Matrix<T>* in_place = nullptr;    // the value read
    Shape recorded_shape;                   // its shape when recorded: backward and replay check it
    std::uint32_t parameter_slot = 0;       // where the parameter's identity lives (registry)
    std::uint64_t parameter_identity = 0;   // ... and what it was when recorded: reads check it
    std::uint64_t parameter_version = 0;    // Parameter::version() when recorded: backward checks it
};

// The fields every recording and every sweep touch come first, in the entry's first cache
// line (its flags, inputs, functions, constant and extras pointer), so that an entry whose
// value lives inline (below) is recorded and swept reading that line and its inline block
// alone: a recurrent model's tape is far larger than the cache, and each line is a miss.
// Aligned to a line. What only leaves and a few ops keep is in extras.
//
// Small values inline: an elementwise entry of the library's own ops (add, mul, the unary
// rules, recorded by Tape::record_flat with gradients on) whose value has at most
// inline_capacity elements keeps its value and its gradient side by side in `small`, in the
// entry, not in `value` and `grad`: no allocation, and the sweep reads one block in recording
// order instead of two buffers somewhere on the heap (a 14x1 LSTM gate: bench/README.md).
// Tape::value(), Var::value() and Var::grad() still give a Matrix: a copy made into `value`
// (`grad`) when asked for, as Tape::input() gives one to an op that reads the entry as a
// matrix; an op's gradient for such an entry goes through a matrix of the tape's and is added
// to the block after that op's backward (Tape::grad_of). So, for such an entry (in_line()), `value` and
// `grad` are not the entry's: read Tape::value(index), as to_dot does. Reading one as a matrix
// writes that copy: a Var::value() on another thread while this one uses the tape, outside the
// one-thread rule, may race on it, where it read only before.
template <class T>
struct alignas(64) Node {
    std::array<std::uint32_t, 3> inputs{};
    std::uint8_t arity = 0;
    bool requires_grad = false;
    // Bits under_nograd: recorded under NoGrad (its inputs may since have been released and
    // reused); in_place: its value is read where it lives, extras->in_place (a parameter's
    // or constant_ref's), not from `value`; library_code: its forward and backward are the
    // library's own ops, which touch nothing but their entry and what it reads and adds to
    // (a user's record_op forward may do anything: a Replay checks the parameters again after it);
    // caller_copy: see holds_caller_copy(); inline_small: see in_line().
    std::uint8_t flags = 0;
    static constexpr std::uint8_t under_nograd = 1, in_place = 2, library_code = 4, caller_copy = 8, inline_small = 16;
    // Bits replay_value, replay_grad: a Replay keeps this entry's value (gradient) in memory of
    // its own, shared with other entries', so the buffer here goes stale: reading it is refused.
    std::uint8_t replay_owned = 0;
    static constexpr std::uint8_t replay_value = 1, replay_grad = 2;
    BackwardFn<T> backward = nullptr;
    Parameter<T>* parameter = nullptr;
    ForwardFn<T> forward = nullptr;   // set by record_op (replayable); null for record()'s lambdas
    const char* op = "";
    T scalar{};                       // an op's constant (a scale factor, 1/m, ...)
    std::unique_ptr<NodeExtras<T>> extras;  // null until an op of the entry asks for one of saved() ... params():
    // A small value and its gradient, side by side (see above): value at data[0, n), gradient
    // at data[n, 2n), for n = rows * cols <= inline_capacity (19 doubles, 39 floats). Right
    // after the first line, so that an inline entry is the first lines of its entry, none
    // skipped. Five lines, so that the entry is nine: with a stride of a power of two (eight
    // lines), the first lines of a long tape's entries fell into an eighth of the cache's sets,
    // and a sweep of 100,000 chained muls took 50 ns an entry instead of 37 (bench/README.md).
    struct alignas(64) SmallBlock {
        std::uint32_t rows, cols;
        T data[(320 - 2 * sizeof(std::uint32_t)) / sizeof(T)];
    };
    static constexpr std::size_t inline_capacity = sizeof(SmallBlock::data) / sizeof(T) / 2;
    SmallBlock small;
    Matrix<T> value;                  // unused for entries read in place, or inline
    Matrix<T> grad;                   // dLoss/dvalue, valid once Tape::gradient_started(its index)

    bool in_line() const { return (flags & inline_small) != 0; }
    std::size_t inline_size() const { return std::size_t(small.rows) * small.cols; }
    Shape inline_shape() const { return {small.rows, small.cols}; }
    T* inline_value() { return small.data; }
    const T* inline_value() const { return small.data; }
    T* inline_grad() { return small.data + inline_size(); }
    const T* inline_grad() const { return small.data + inline_size(); }
    bool recorded_under_nograd() const { return (flags & under_nograd) != 0; }
    bool reads_in_place() const { return (flags & in_place) != 0; }
    /// Whether the entry holds a copy, made when it was recorded, of a matrix the caller gave:
    /// its value (Tape::constant, Tape::leaf) or its target matrix (a loss given one, through
    /// copy_targets). Running the entry again, as a replay does, reads the copy, not what the
    /// caller's matrix holds now. (A loss's labels are a copy too, kept apart in labels():
    /// Replay::set_labels replaces them.)
    bool holds_caller_copy() const { return (flags & caller_copy) != 0; }
    // The in-place value's record: made by Tape::push_in_place, read only if reads_in_place().
    NodeExtras<T>& leaf() { return more(); }
    const NodeExtras<T>& leaf() const { return more(); }  // all empty for an entry that has none
    // The same for an entry known to read in place, which always has extras: without leaf()'s
    // guard against none (a function-local static, which kept its callers from being inlined
    // and cost every replayed step of an MLP a call per check of each parameter).
    NodeExtras<T>& in_place_record() { return *extras; }
    const NodeExtras<T>& in_place_record() const { return *extras; }
    T scalar2() const { return extras ? extras->scalar2 : T(0); }
    // An entry without extras reads 0: only another constant makes it allocate them.
    void set_scalar2(T s2) {
        if (extras || s2 != T(0) || std::signbit(s2)) more().scalar2 = s2;
    }
    Matrix<T>& saved() { return more().saved; }
    Matrix<T>& targets() { return more().targets; }
    Labels& labels() { return more().labels; }
    std::array<Matrix<T>, 2>& work() { return more().work; }
    std::array<std::uint32_t, 8>& params() { return more().params; }
    const Matrix<T>& saved() const { return more().saved; }
    const Matrix<T>& targets() const { return more().targets; }
    const Labels& labels() const { return more().labels; }
    const std::array<Matrix<T>, 2>& work() const { return more().work; }
    const std::array<std::uint32_t, 8>& params() const { return more().params; }
    // Y copied into targets(): the one way an op keeps a caller's target matrix, so that every
    // such entry says holds_caller_copy().
    void copy_targets(const Matrix<T>& Y) {
        ensure_shape(targets(), shape_of(Y));
        std::copy(Y.begin(), Y.end(), targets().begin());
        flags |= caller_copy;
    }
    // A 64-bit integer parameter (an offset or a count that may pass 2^32, an rng's seed) in
    // params()[k] (low 32 bits) and params()[k + 1] (high).
    void set_param64(std::size_t k, std::uint64_t v) {
        params()[k] = static_cast<std::uint32_t>(v);
        params()[k + 1] = static_cast<std::uint32_t>(v >> 32);
    }
    std::uint64_t param64(std::size_t k) const { return (std::uint64_t(params()[k + 1]) << 32) | params()[k]; }

private:
    NodeExtras<T>& more() {
        if (!extras) extras = std::make_unique<NodeExtras<T>>();
        return *extras;
    }
    const NodeExtras<T>& more() const {
        static const NodeExtras<T> none;  // an entry that never asked: all empty
        return extras ? *extras : none;
    }
};

// The tape's entries, in chunks of 256: contiguous in memory, so that the reverse sweep over
// a long tape streams through them (one heap block per entry, as std::deque gives entries
// this size, scattered them between their own buffers), and never moved by growth, so
// references to recorded values stay valid.
//
// The table of chunks is never freed while the tape lives either: growing it makes a table
// twice the size and keeps the old one. Another thread reading an entry while this one
// records (Var::value, or an op's checks before it is refused as concurrent use) may still
// hold the old table, and finds there the same chunks. With std::vector's table that read
// was a use-after-free (two threads recording on one tape, found by an attack). A plain
// pointer, not an atomic one: the compiler then keeps it in a register across a loop over
// entries (an atomic load each access cost the recurrent gradient 41.5M -> 48.8M
// instructions per evaluation, bench/lstm_misses.sh). The ops read entries only once they hold
// the tape (ops::HeldTape); what is left is a Var's value read on another thread while this one
// records, outside the one-thread rule and formally a race, which must still land in memory
// the tape owns.
template <class T>
class EntryChunks {
public:
    Node<T>& operator[](std::size_t i) { return table_[i >> shift][i & mask]; }
    const Node<T>& operator[](std::size_t i) const { return table_[i >> shift][i & mask]; }
    std::size_t size() const { return size_; }
    EntryChunks() = default;
    EntryChunks(const EntryChunks&) = delete;
    EntryChunks& operator=(const EntryChunks&) = delete;
    ~EntryChunks() {
        for (Node<T>* chunk : chunks_) std::destroy_n(chunk, per_chunk);
    }
    // One more entry; on a throw (no memory) nothing changed.
    void emplace_back() {
        if (size_ == chunks_.size() * per_chunk) {
            chunks_.reserve(chunks_.size() + 1);
            if (chunks_.size() == table_capacity_) grow_table();  // before the chunk: its pointer is published there
            // A long tape's chunks (after its first two) from huge-page slabs: see autodiff/entry_memory.hpp.
            void* memory = memory_.take(per_chunk * sizeof(Node<T>), alignof(Node<T>), chunks_.size() >= 2);
            // Default-initialised: each entry's members are, its inline block is not (a
            // recording writes what it reads). Value-initialised, every new chunk was zeroed
            // whole, 144 KB at a time, on a tape's first recording. A Node's constructor does
            // not throw (its members' allocate nothing); a throw leaves the memory to memory_.
            Node<T>* chunk = static_cast<Node<T>*>(memory);
            std::uninitialized_default_construct_n(chunk, per_chunk);
            table_[chunks_.size()] = chunk;
            chunks_.push_back(chunk);  // reserved: does not throw
        }
        ++size_;
    }

private:
    // A table twice the size, published once it holds every chunk; the old one stays.
    void grow_table() {
        const std::size_t capacity = table_capacity_ == 0 ? 16 : 2 * table_capacity_;
        tables_.reserve(tables_.size() + 1);
        auto table = std::make_unique<Node<T>*[]>(capacity);
        for (std::size_t c = 0; c < chunks_.size(); ++c) table[c] = chunks_[c];
        // The table's pointers before the table: a reader follows table_ to them (an address
        // dependency, which every CPU orders), and the release store keeps the compiler and a
        // weakly ordered CPU from publishing the table first. A builtin on the plain pointer
        // (std::atomic_thread_fence is not supported under ThreadSanitizer: -Wtsan).
        __atomic_store_n(&table_, table.get(), __ATOMIC_RELEASE);
        tables_.push_back(std::move(table));  // reserved: does not throw
        table_capacity_ = capacity;
    }

    // 256 entries (144 KB): chunks of 128 (72 KB, under glibc's threshold for an mmap of their
    // own) made a new tape's first recurrent gradient faster (2 x 1024: 13-15 -> 6.5-6.8 ms)
    // but every replayed one slower (4 x 4096: 1.19 -> 1.34-1.36 of the hand-written one),
    // bench/README.md.
    static constexpr std::size_t shift = 8, per_chunk = std::size_t(1) << shift, mask = per_chunk - 1;
    detail::EntryMemory memory_;                       // where the chunks are (freed after ~EntryChunks)
    std::vector<Node<T>*> chunks_;                     // their entries are destroyed by ~EntryChunks
    std::vector<std::unique_ptr<Node<T>*[]>> tables_;  // every table made (about as many pointers again as the last)
    Node<T>** table_ = nullptr;                        // the last: chunks_[c] at [c]
    std::size_t table_capacity_ = 0;
    std::size_t size_ = 0;
};

// Handle to a value recorded on a tape.
template <class T = double>
class Var {
public:
    Var() = default;
    // Handles of entries recorded under NoGrad count their copies (see the top of this file);
    // the others are plain copies and pay one branch.
    Var(const Var& other) : tape_(other.tape_), index_(other.index_), slot_(other.slot_), generation_(other.generation_) {
        if (counted()) retain();
    }
    Var(Var&& other) noexcept
        : tape_(other.tape_), index_(other.index_), slot_(other.slot_), generation_(other.generation_) {
        if (counted()) other.forget();
    }
    Var& operator=(const Var& other) {
        if (other.counted()) other.retain();
        if (counted()) release();
        tape_ = other.tape_, index_ = other.index_, slot_ = other.slot_, generation_ = other.generation_;
        return *this;
    }
    Var& operator=(Var&& other) noexcept {
        if (this == &other) return *this;
        if (counted()) release();
        tape_ = other.tape_, index_ = other.index_, slot_ = other.slot_, generation_ = other.generation_;
        if (counted()) other.forget();
        return *this;
    }
    ~Var() {
        if (counted()) release();
    }
    const Matrix<T>& value() const;
    // dLoss/dvalue after backward(); for a parameter leaf, the parameter's accumulated grad.
    const Matrix<T>& grad() const;
    Shape shape() const;
    std::size_t rows() const { return shape().rows; }
    std::size_t cols() const { return shape().cols; }
    bool requires_grad() const;
    // The tape it was recorded on; throws (naming op) unless the handle is live.
    Tape<T>& tape(const char* op = "Var") const {
        require_live(op);
        return *tape_;
    }
    // Throws, naming op, unless the handle is live: recorded, and its tape neither reset nor destroyed.
    // Asked of the registry, not of the tape, which may be gone. Inline: every op asks it.
    void require_live(const char* op) const {
        if (tape_ == nullptr ||
            detail::TapeRegistry::generation(slot()).load(std::memory_order_acquire) != generation_)
            reject_unusable(op);
    }
    bool recorded_on(const Tape<T>& tape) const { return tape_ == &tape; }  // compares addresses only
    std::uint32_t index() const { return index_; }

private:
    friend class Tape<T>;
    static constexpr std::uint32_t counted_bit = 1u << 31;  // registry slots stay below 2^24
    Var(Tape<T>* tape, std::uint32_t index, std::uint32_t slot, std::uint64_t generation)
        : tape_(tape), index_(index), slot_(slot), generation_(generation) {}
    bool counted() const { return (slot_ & counted_bit) != 0; }
    std::uint32_t slot() const { return slot_ & ~counted_bit; }
    bool live() const {
        return detail::TapeRegistry::generation(slot()).load(std::memory_order_relaxed) == generation_;
    }
    [[noreturn, gnu::cold, gnu::noinline]] void reject_unusable(const char* op) const;  // require_live's error
    // retain() inline into every copy of a handle: under NoGrad an evaluation makes several per
    // op. release() is a call: inline, it made ~Var too large for GCC to inline, so every
    // handle destroyed paid a call, also the uncounted ones (moved from, or recorded with
    // gradients) that need only the test in ~Var (recurrent gradient -1.3%, NoGrad loss -0.7%
    // of instructions, bench/README.md).
    [[gnu::always_inline]] inline void retain() const;
    [[gnu::noinline]] void release() noexcept;
    [[gnu::noinline]] void retain_unheld() const;      // retain() when this thread does not hold the tape
    [[gnu::noinline]] void release_unheld() noexcept;  // release() likewise
    void forget() noexcept { tape_ = nullptr, index_ = 0, slot_ = 0, generation_ = 0; }
    Tape<T>* tape_ = nullptr;
    std::uint32_t index_ = 0;
    std::uint32_t slot_ = 0;        // the tape's registry slot (read before tape_ is touched) | counted_bit
    std::uint64_t generation_ = 0;
};

// An op's input as record() takes it: a reference to the caller's handle, so that passing
// {a, b} copies no handle (copying a handle recorded under NoGrad counts it: a registry
// check and a count per copy, several per op on the way into the tape).
template <class T>
class InputRef {
public:
    InputRef(const Var<T>& v) : var_(&v) {}  // implicit, so that callers write {a, b}
    const Var<T>& operator*() const { return *var_; }
    const Var<T>* operator->() const { return var_; }

private:
    const Var<T>* var_;
};

// Where an input's gradient goes: written on the first contribution, added on later ones,
// so gradients are never zero-filled first and a reused input (a + a) still sums correctly.
template <class T>
struct GradientSink {
    Matrix<T>& grad;
    bool overwrite;
    T beta() const { return overwrite ? T(0) : T(1); }  // for BLAS calls: C = alpha*AB + beta*C
    // grad[k] (=|+=) contribution(k) over the flat index, branching once outside the loop.
    // __restrict: the gradient never aliases what the contribution reads, and saying so
    // lets the compiler vectorise (without it, relu's backward ran as a mispredicted branch).
    template <class F>
    void accumulate(F&& contribution) {
        T* __restrict out = grad.data();
        const std::size_t n = grad.size();
        if (overwrite) {
            TAPEGRAD_LOOP_WITHOUT_OVERLAP
            for (std::size_t k = 0; k < n; ++k) out[k] = contribution(k);
        } else {
            TAPEGRAD_LOOP_WITHOUT_OVERLAP
            for (std::size_t k = 0; k < n; ++k) out[k] += contribution(k);
        }
    }
    // The same over (row, column) of the gradient's shape.
    template <class F>
    void accumulate_2d(F&& contribution) {
        T* __restrict out = grad.data();
        const std::size_t rows = grad.shape()[0], cols = grad.shape()[1];
        for (std::size_t i = 0; i < rows; ++i, out += cols) {
            if (overwrite) {
                TAPEGRAD_LOOP_WITHOUT_OVERLAP
                for (std::size_t j = 0; j < cols; ++j) out[j] = contribution(i, j);
            } else {
                TAPEGRAD_LOOP_WITHOUT_OVERLAP
                for (std::size_t j = 0; j < cols; ++j) out[j] += contribution(i, j);
            }
        }
    }
};

template <class T>
class Tape {
public:
    Tape();
    ~Tape();
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;

    // Leaves. constant() copies into a reused buffer and gets no gradient; parameter()
    // reads the Parameter in place; leaf() copies and gets a gradient (gradcheck, inputs).
    Var<T> constant(const Matrix<T>& value);
    Var<T> parameter(Parameter<T>& p);
    Var<T> leaf(const Matrix<T>& value);
    // A constant read in place, not copied (large inputs, and the inputs of a Replay, which
    // the caller refills between runs). Like a std::string_view, it is the caller's promise
    // that `value` outlives every use of the handle and of the tape's recording; its shape
    // is checked against the recorded one on backward() and on every replay, so a resized
    // matrix is reported instead of read out of bounds.
    Var<T> constant_ref(const Matrix<T>& value);

    // From a 1x1 output the sweep is seeded with 1; anything else needs a seed of its shape,
    // every number finite.
    void backward(const Var<T>& output);
    void backward(const Var<T>& output, const Matrix<T>& seed);

    // Forget every entry but keep their buffers. Handles from before become stale.
    void reset();
    /// Entries recorded since reset(), those reused under NoGrad counted once.
    std::size_t size() const { return size_; }
    /// Entries still held: size() less the NoGrad entries no handle refers to any more.
    std::size_t live_entries() const { return size_ - free_.size(); }
    /// Bytes of values the tape holds for its live entries (parameters are not copied: 0).
    std::size_t recorded_bytes() const { return recorded_bytes_; }

    // The settings below are read by recordings and sweeps, so each setter takes the tape as
    // an op does: called while another thread uses the tape, or from inside the tape's own
    // recording or sweep (a gradient-ready hook, an op's forward or backward), it throws,
    // naming itself, and changes nothing. The getters do not (a plain read).

    /// Recording past this many bytes of values and entries (sizeof(Node) each, which a loop
    /// of 1x1 ops fills faster than values) throws, naming the likely cause (a loop that
    /// never calls reset()); 0 means no limit. Default: default_memory_limit.
    void set_memory_limit(std::size_t bytes);
    std::size_t memory_limit() const { return memory_limit_; }
    static constexpr std::size_t default_memory_limit = std::size_t(1) << 30;  // 1 GiB

    // Off by default: then no op looks at its values. On: the first non-finite forward
    // value or backward gradient throws AnomalyError naming the op and its place.
    void set_detect_anomaly(bool on);
    bool detect_anomaly() const { return detect_anomaly_; }

    // false: parameter gradients stay on the tape (value_and_grad) instead of accumulating
    // into Parameter::grad.
    void set_accumulate_into_parameters(bool on);
    bool accumulate_into_parameters() const { return accumulate_into_parameters_; }
    // p's gradient as of the last sweep, summed over every place p was recorded. With
    // accumulation into parameters on (the default) that is p.grad itself, which also holds
    // what earlier sweeps added since the last zero_grad().
    Matrix<T> gradient_of(const Parameter<T>& p) const;

    bool grad_enabled() const { return grad_enabled_; }
    void set_grad_enabled(bool on);

    /// During every later backward(), calls ready(context, p) once per parameter p recorded
    /// up to the output, in the order their gradients become final (p.grad then holds this
    /// sweep's whole contribution). nullptr removes the hook. Only with accumulation into
    /// parameters on (the default): with it off the hook is not called. An `owner` whose
    /// object is destroyed while the hook is set makes every later backward() throw, naming it,
    /// until the hook is removed or replaced.
    void set_gradient_ready_hook(GradientReadyFn<T> ready, void* context, HookOwner owner = {});

    // ---- Recording API: built-in ops and user-defined ops use the same calls. ----
    //
    // record() appends an entry of the given shape, lets `forward(node)` fill node.value
    // (and node.saved(), node.scalar...), then returns the handle. The backward function
    // runs only if some input needs a gradient.
    template <class Forward>
    Var<T> record(const char* op, std::initializer_list<InputRef<T>> inputs, Shape shape,
                  BackwardFn<T> backward, Forward&& forward);

    // The replayable form, which every built-in op uses: `setup(node)` stores the op's
    // parameters in the entry (node.scalar, node.params, ...), then `forward(tape, node)`
    // computes the value from the inputs (tape.input(node, i)) and those parameters alone,
    // so running it again later over new input values is the same computation. It should not
    // change, resize or destroy a Parameter or a constant_ref's matrix (the entries after it
    // read them in place); a Replay checks them again after such a forward, and refuses.
    template <class Setup>
    Var<T> record_op(const char* op, std::initializer_list<InputRef<T>> inputs, Shape shape,
                     ForwardFn<T> forward, BackwardFn<T> backward, Setup&& setup);
    Var<T> record_op(const char* op, std::initializer_list<InputRef<T>> inputs, Shape shape,
                     ForwardFn<T> forward, BackwardFn<T> backward) {
        return record_op(op, inputs, shape, forward, backward, [](Node<T>&) {});
    }

    // The recording of an elementwise op whose inputs all have its shape, computed by `kernel`
    // on raw buffers (autodiff/flat_step.hpp): the entry record_op makes, without record_op's
    // general steps (shape arithmetic, the forward called through the entry, the value's shape
    // checked after it). add, mul and the unary rules record so on such inputs: a recurrent
    // model records hundreds of thousands of them. The inputs are checked here (live handles
    // of this tape); inputs of different shapes record nothing and give nullopt: the op's
    // broadcasting path then records it. `forward` is stored for a Replay, and must compute
    // what `kernel` does. library_code: the library's own ops say so (Node::library_code: a
    // Replay then trusts the entry to touch nothing but its buffers); a user's entry is
    // checked after. Defined in flat_step.hpp.
    template <std::size_t Arity, class Kernel>
    std::optional<Var<T>> record_flat(const char* op, const std::array<const Var<T>*, Arity>& inputs,
                                      ForwardFn<T> forward, BackwardFn<T> backward, Kernel&& kernel, T s = T(0),
                                      T s2 = T(0), bool library_code = false);

    // For the backward of an elementwise entry (ops/elementwise.cpp, ops/unary_rule.hpp): the
    // entry's buffers as a FlatStep when every input has the entry's size, as record_flat
    // recorded it (else nullopt, and nothing is claimed: a broadcast entry's path sums back).
    // Each input's entry is looked up once, and the gradients of those that need one claimed
    // in input order (x * x: side 0 overwrites, side 1 then adds), overwrite[k] saying which.
    // The step's s2 is left 0. Defined in flat_step.hpp.
    template <std::size_t Arity>
    [[gnu::always_inline]] inline std::optional<FlatStep<T>> flat_entry_step(Node<T>& y, bool* overwrite);

    const Node<T>& node(const Var<T>& v) const;
    // Whether the last sweep gave the index-th entry a gradient (Node::grad holds it, or for
    // a parameter with accumulation on, Parameter::grad). Throws unless index < size().
    bool gradient_started(std::size_t index) const;
    // The index-th entry in recording order (an input's index is in Node::inputs), for
    // tools that walk the tape, such as to_dot. Throws unless index < size().
    const Node<T>& entry(std::size_t index) const;
    const Matrix<T>& value(std::uint32_t index) const { return value_of(nodes_[index]); }
    const Matrix<T>& value_of(const Node<T>& n) const {
        if (!(n.flags & (Node<T>::in_place | Node<T>::inline_small))) return n.value;
        if (n.in_line()) return materialized_value(n);
        // Not through leaf(), whose guard kept this from being inlined (+2M instructions per
        // recurrent gradient, bench/lstm_misses.sh).
        return n.parameter ? parameter_value(n) : *n.in_place_record().in_place;  // a parameter: checked to exist still
    }
    // An entry's value as raw elements, without the copy value_of makes of an inline one.
    struct FlatValue {
        const T* data;
        Shape shape;
    };
    FlatValue flat_value(const Node<T>& n) const {
        if (n.in_line()) return {n.inline_value(), n.inline_shape()};
        const Matrix<T>& m = value_of(n);
        return {m.data(), shape_of(m)};
    }
    Shape value_shape(std::uint32_t index) const { return flat_value(nodes_[index]).shape; }
    // For an op's own forward and backward: where its entry's value and gradient are (inline
    // or in its matrices), and how many elements.
    static T* own_value(Node<T>& y) { return y.in_line() ? y.inline_value() : y.value.data(); }
    static T* own_grad(Node<T>& y) { return y.in_line() ? y.inline_grad() : y.grad.data(); }
    static std::size_t own_size(const Node<T>& y) { return y.in_line() ? y.inline_size() : y.value.size(); }
    // For use inside a backward function: the value of the node's i-th input,
    // whether it needs a gradient, and where to put it.
    const Matrix<T>& input(const Node<T>& n, int i) const { return value(n.inputs[check_input(n, i)]); }
    bool needs_grad(const Node<T>& n, int i) const { return nodes_[n.inputs[check_input(n, i)]].requires_grad; }
    // Always inline (every backward calls it per input; as a call it cost a recurrent gradient
    // 3.8% of its instructions).
    [[gnu::always_inline]] inline GradientSink<T> grad_of(const Node<T>& n, int i);

    // Throws unless v is a live handle of this tape; `op` names the caller in the message.
    void check(const Var<T>& v, const char* op) const {
        if (v.tape_ != this || v.generation_ != generation_ || v.index_ >= size_) reject(v, op);
    }

private:
    friend class Var<T>;
    friend class Replay<T>;
    friend class NoGrad<T>;
    friend class ops::HeldTape<T>;
    friend class detail::AccumulationRestore<T>;
    class ExclusiveUse;  // one thread at a time (tape.cpp)
    static constexpr std::uint32_t pinned = 1u << 31;  // refs_ bit: the entry is never reused
    // refs_ bit: the sweep has started the entry's gradient (its first contribution is in).
    // Kept beside the counts rather than in the entry, so that a replay's flat steps need not
    // touch their entries. Only entries recorded with gradients get it, and those are
    // pinned, never counted.
    static constexpr std::uint32_t started = 1u << 30;
    // Inline, as are take_released and recycle: under NoGrad they are most of a tiny op's
    // bookkeeping, and the fields push() clears that the recording then sets cost nothing.
    // Always: GCC had kept it a call (NoGrad loss -3.3%, gradient -2.6% of instructions).
    [[gnu::always_inline]] inline std::uint32_t push(const char* op, std::size_t value_bytes);
    std::uint32_t push_in_place(const char* op);  // a parameter's or constant_ref's entry
    void add_entry();  // at the end, for push()
    // A NoGrad entry to reuse, if any: the last released when its buffer has the size wanted
    // (nearly always, in a loop of same-shape ops), else take_released_searching decides.
    bool take_released(std::size_t wanted, std::uint32_t& index) {
        if (free_.empty() || free_.back().size != wanted) return take_released_searching(wanted, index);
        index = free_.back().index;
        free_.pop_back();
        return true;
    }
    bool take_released_searching(std::size_t wanted, std::uint32_t& index);
    void abandon(std::uint32_t index) noexcept;  // undoes push() after a throw
    inline void recycle(std::uint32_t index) noexcept;  // the last counted handle of a NoGrad entry is gone
    // An entry given up (released or abandoned), renamed `why`: nothing may run it again,
    // follow its inputs, or read its value in place.
    static void forget_recording(Node<T>& n, const char* why) noexcept {
        n.op = why;
        n.arity = 0;
        n.backward = nullptr;
        n.forward = nullptr;
        n.parameter = nullptr;
        n.flags &= static_cast<std::uint8_t>(~(Node<T>::in_place | Node<T>::caller_copy | Node<T>::inline_small));
        n.requires_grad = false;
    }
    void pin(std::uint32_t index) {
        if (!(refs_[index] & pinned)) pin_nograd_entry(index);
    }
    void pin_nograd_entry(std::uint32_t index);
    [[noreturn]] void reject_memory(const char* op, std::size_t value_bytes) const;
    // What the memory limit counts once an entry of value_bytes more is recorded: values, and
    // the entries themselves (a recording that reuses a released one overestimates by one).
    // Saturating: a declared shape of nearly 2^64 bytes must not wrap around to a small total
    // and pass the limit (found by an attack: bad_alloc instead of the limit's message).
    std::size_t held_bytes(std::size_t value_bytes) const {
        std::size_t total = 0;
        if (__builtin_add_overflow(recorded_bytes_ + (live_entries() + 1) * sizeof(Node<T>), value_bytes, &total))
            return SIZE_MAX;
        return total;
    }
    [[noreturn]] static void reject_arity(const char* op);  // more than 3 inputs
    // Reading an entry's value or gradient that a Replay keeps in memory of its own.
    [[noreturn, gnu::cold, gnu::noinline]] void reject_replay_owned(std::uint32_t index, const char* who,
                                                                    const char* what) const;
    void check_index(std::size_t index, const char* who) const;  // throws unless index < size()
    [[noreturn]] static void reject_shape(const char* op, Shape shape);  // rows x cols x sizeof(T) overflows
    [[noreturn]] static void reject_value_shape(const Node<T>& n, Shape declared);  // forward left another shape
    [[noreturn]] void reject_after_backward(const char* op) const;  // or while a Replay holds the step
    [[noreturn]] void reject_held_by_replay(const char* op) const;
    bool lock_for(const char* op);               // ExclusiveUse's halves, inline-able
    // Only this thread stores its own token in held_by_, so reading it relaxed can only
    // mistake another thread's (or no) holder for not-this-thread, and then the exchange decides.
    bool held_by_this_thread() const noexcept {
        return held_by_.load(std::memory_order_relaxed) == this_thread_token();
    }
    void unlock() noexcept { busy_.store(false, std::memory_order_release); }
    // NoGrad's halves (and an op's, ops::HeldTape): whether this thread now holds the tape for
    // the scope (false when an outer scope of this thread already does); throws, naming `who`,
    // while another thread uses the tape.
    bool hold_for_this_thread(const char* who);
    void end_hold() noexcept {
        held_by_.store(nullptr, std::memory_order_relaxed);
        unlock();
    }
    // An address only this thread has: who holds the tape, without a system call.
    static const void* this_thread_token() noexcept {
        static thread_local const char token = 0;
        return &token;
    }
    [[noreturn]] static void reject_concurrent_use(const char* op);
    // value_and_grad's restore from a destructor (detail::AccumulationRestore): never throws;
    // false, changing nothing, when the tape is busy and not this thread's (tape.cpp says why).
    bool try_restore_accumulation(bool on) noexcept;
    const Matrix<T>& parameter_value(const Node<T>& n) const;  // checks the parameter still exists
    [[noreturn]] void reject_parameter(const Node<T>& n) const;
    void check_in_place_unchanged(std::uint32_t index) const;
    // The shape backward adds a parameter's gradient into (an empty one is started). Inline, as
    // is rerecord_in_place: a replay asks both of every parameter on every run, and as calls
    // they were ~700 instructions of the S step's 28,700 (callgrind); the messages stay out of line.
    void check_parameter_grad(const Node<T>& n, std::uint32_t index) const {
        if (!parameter_grad_fits(n)) start_or_reject_parameter_grad(n, index);
    }
    // Whether a sweep can add into n's parameter's gradient in place: it has the recorded shape,
    // or n adds nothing to it (not a parameter, none needed, or accumulation off).
    bool parameter_grad_fits(const Node<T>& n) const {
        if (n.parameter == nullptr || !n.requires_grad || !n.reads_in_place() || !accumulate_into_parameters_) return true;
        return shape_of(n.parameter->grad) == n.in_place_record().recorded_shape;
    }
    [[gnu::noinline]] void start_or_reject_parameter_grad(const Node<T>& n, std::uint32_t index) const;
    // For a Replay about to run the forward again: the in-place value is checked (alive,
    // same shape) and its version taken as of now.
    void rerecord_in_place(std::uint32_t index) {
        Node<T>& n = nodes_[index];
        if (!n.reads_in_place()) return;
        if (!in_place_readable(n)) check_in_place_readable(index, "Replay");  // throws, saying what is wrong
        if (n.parameter != nullptr) n.in_place_record().parameter_version = n.parameter->version_;  // read again now
    }
    // Whether n's value can be read in place as recorded: the parameter alive (its identity is
    // read before its value is), the value of the recorded shape. check_in_place_readable
    // checks the same and throws, naming op and what is wrong.
    bool in_place_readable(const Node<T>& n) const {
        const NodeExtras<T>& leaf = n.in_place_record();
        if (n.parameter != nullptr &&
            detail::TapeRegistry::generation(leaf.parameter_slot).load(std::memory_order_acquire) != leaf.parameter_identity)
            return false;
        return shape_of(*leaf.in_place) == leaf.recorded_shape;
    }
    void check_in_place_readable(std::uint32_t index, const char* op) const;  // alive, recorded shape
    Var<T> copy_leaf(const Matrix<T>& value, const char* op, bool is_leaf);  // a leaf needs a gradient unless under NoGrad
    [[noreturn]] void reject(const Var<T>& v, const char* op) const;  // check()'s error, out of the hot path
    static int check_input(const Node<T>& n, int i) {
        if (i < 0 || i >= n.arity) reject_input(n, i);
        return i;
    }
    [[noreturn]] static void reject_input(const Node<T>& n, int i);
    // grad_of's error for input i of n, a parameter recorded with gradients off.
    [[noreturn, gnu::cold, gnu::noinline]] void reject_grad_for_nograd_parameter(const Node<T>& n, int i) const;
    // Checks, then the output's seed sink. in_place_rerecorded: a replay's forward has just
    // checked every entry read in place (rerecord_in_place) and ran only the library's code
    // since, so only their gradients are left to check.
    GradientSink<T> start_backward(const Var<T>& output, bool in_place_rerecorded = false);
    // backward(output) once the tape is locked; a Replay passes its flat plan (else null).
    void backward_from_scalar(const Var<T>& output, FlatPlan<T>* plan = nullptr, bool in_place_rerecorded = false);
    void sweep(const Var<T>& output, FlatPlan<T>* plan);
    void resolve_leaf_grad(FlatStep<T>& step, std::uint32_t side, std::uint32_t leaf);  // where a leaf's gradient is now
    void point_at_entries_grads(FlatStep<T>& step, std::uint32_t index, const bool* overwrite);
    [[gnu::always_inline]] inline void prefetch_for_sweep(std::size_t i) const;  // the entries and buffers entry i's backward will read
    [[gnu::always_inline]] inline void prefetch_entry(const Node<T>& n) const;  // its first line and its inline block
    [[gnu::always_inline]] inline void prefetch_buffers(const Node<T>& n) const;  // its gradient, its inputs' values and gradients
    // Whether the first contribution to entry `index`'s gradient is written (else added: a
    // parameter's, which accumulates across sweeps), and marks it started: grad_of's
    // decision, shared with a Replay's flat steps.
    bool claim_gradient(std::uint32_t index, bool is_parameter) {
        const bool overwrite = !(refs_[index] & started) && !(is_parameter && accumulate_into_parameters_);
        refs_[index] |= started;
        return overwrite;
    }
    // A handle of entry index: counted (and counting) unless the entry is pinned.
    Var<T> handle(std::uint32_t index) {
        if (refs_[index] & pinned) return Var<T>(this, index, slot_, generation_);
        ++refs_[index];
        return Var<T>(this, index, slot_ | Var<T>::counted_bit, generation_);
    }
    void check_finite_value(std::uint32_t index) const;
    // Anomaly detection's check of an entry just recorded. One refused under NoGrad gets no
    // handle, so it is released here: an evaluation loop that caught the errors grew the tape.
    void check_new_value(std::uint32_t index);
    // Throws, naming op, if n reads a value in place whose shape changed since it was recorded.
    void check_in_place_shape(const Node<T>& n, std::size_t index, const char* op) const;
    void check_finite_input_grads(const Node<T>& n, std::uint32_t index) const;
    void check_after_users_backward(const Node<T>& n, std::uint32_t index, FlatPlan<T>* plan);
    // A replay's flat steps pointed at where the values read in place are now: after a user's
    // code, which may have given a parameter or a constant_ref's matrix a new buffer.
    void point_at_in_place_values(FlatPlan<T>& plan) const;
    void check_input_grads_kept(const Node<T>& n, std::uint32_t index) const;  // after a user's backward: their shapes
    void copy_owned_buffers_back(const FlatStep<T>& step, std::uint32_t index);  // for anomaly checks of a Replay
    void claim_flat_inputs(FlatStep<T>& step, std::uint32_t index, bool* overwrite);
    void sweep_affine(FlatStep<T>& step, std::uint32_t index);
    AffineParts<T> affine_parts(const FlatStep<T>& step, std::uint32_t index) const;  // index: the activation's entry
    void check_finite_accumulated_grad(std::uint32_t index) const;  // a parameter's grad before a sweep
    const Matrix<T>& grad_buffer(const Node<T>& n) const {  // where n's gradient accumulates
        return (n.parameter && accumulate_into_parameters_) ? n.parameter->grad : n.grad;
    }
    Matrix<T>& grad_buffer(Node<T>& n) {
        return const_cast<Matrix<T>&>(static_cast<const Tape&>(*this).grad_buffer(static_cast<const Node<T>&>(n)));
    }
    void find_final_leaves(std::uint32_t output);  // fills final_leaves_ for the hook
    // An inline entry (Node::in_line) read as a matrix: its value (gradient) copied into the
    // entry's `value` (`grad`), which is otherwise unused. Out of line: value_of's cold branch.
    [[gnu::noinline]] const Matrix<T>& materialized_value(const Node<T>& n) const;
    const Matrix<T>& materialized_grad(const Node<T>& n) const;
    // grad_of for an inline input: the op adds into one of detour_grads_ (started afresh by the
    // op's first call for that input), which merge_detours() then adds to the entry's block,
    // as the gradient claimed here says (written or added to). Done by the sweep after each
    // backward that is an entry's own code, and at its start (the seed of an inline output).
    [[gnu::noinline]] GradientSink<T> detour_grad(std::uint32_t index);
    // by: the entry whose backward just ran (named if it replaced a gradient); null for the seed.
    void merge_detours(const Node<T>* by = nullptr, std::uint32_t by_index = 0);
    // Throws: entry `index`'s backward left its input k's gradient `left`, not the input's shape.
    [[noreturn]] void reject_replaced_grad(const Node<T>& n, std::uint32_t index, std::uint8_t k, Shape left, Shape input) const;
    struct Detour {
        std::uint32_t index;
        bool overwrite;
    };
    std::array<Detour, 3> detours_{};  // an op has at most 3 inputs
    // What the op adds to, one per detour: not the entry's `grad`, which Var::grad() overwrites
    // with the block (a user's backward reading an input's gradient lost its own contribution).
    std::array<Matrix<T>, 3> detour_grads_;
    std::uint32_t detour_count_ = 0;

    // Recording never moves existing entries: references to values stay valid.
    // nodes_[size_..] are spare entries whose buffers are kept for the next recording.
    EntryChunks<T> nodes_;
    std::vector<std::uint32_t> refs_;   // per entry: counted handles alive | pinned
    struct Released {
        std::uint32_t index;
        std::size_t size;  // of its value buffer: take_released matches it without touching the entry
    };
    std::vector<Released> free_;  // NoGrad entries to reuse (capacity >= nodes_: push_back never throws)
    std::vector<std::uint32_t> in_place_entries_;  // parameters and constant_refs, for backward's checks
    std::size_t recorded_bytes_ = 0;
    std::size_t memory_limit_ = default_memory_limit;
    std::atomic<bool> busy_{false};     // a thread is inside a recording, a sweep or a reset, or holds a NoGrad
    std::atomic<const void*> held_by_{nullptr};  // that NoGrad's thread (this_thread_token)
    std::size_t size_ = 0;
    std::uint32_t slot_;
    std::uint64_t generation_ = 0;
    bool swept_ = false;
    // Whether push() last took a released entry (else a new one at the end): abandon() gives
    // it back where it came from. Shrinking the tape for a reused last entry lost one.
    bool last_push_reused_ = false;
    // A Replay keeps some entries' values in memory of its own: an op recorded now could read
    // one's stale buffer, so recording waits for reset().
    bool held_by_replay_ = false;
    std::atomic<const void*> replay_owner_{nullptr};  // the live Replay whose arena holds some entries' values, if any (~Replay clears it unlocked)
    // Replays of the current recording alive (reset() forgets them: a Replay made before it
    // counts itself out only while the recording it was made of is current).
    std::atomic<std::uint32_t> live_replays_{0};
    bool grad_enabled_ = true;
    bool detect_anomaly_ = false;
    bool accumulate_into_parameters_ = true;
    GradientReadyFn<T> ready_hook_ = nullptr;
    void* ready_context_ = nullptr;
    HookOwner ready_owner_;
    // The hook's schedule for one sweep: per parameter its earliest leaf, highest index
    // first (the order the sweep reaches them). Kept, so a steady state allocates nothing.
    std::vector<std::pair<const Parameter<T>*, std::uint32_t>> final_leaves_;
};

// Records values without gradients inside its scope (inference), like torch::NoGradGuard.
// The tape belongs to this thread while the scope lives (another thread's use throws), which
// spares each op of an evaluation its atomic exclusion: a recurrent model's evaluation runs
// hundreds of thousands of tiny ops. Made while another thread records on the tape or holds
// it, it throws, changing nothing (it would switch that thread's recording off). Scopes end
// in the reverse order of their making, and before their tape is destroyed.
template <class T = double>
class NoGrad {
public:
    // The hold first: the grad mode is read and changed only by the thread that holds the tape.
    // Written directly rather than by set_grad_enabled: this thread holds the tape from the
    // hold to the destructor's end_hold (an outer scope of its own does when held_ is false),
    // so there is nothing to check, and the destructor cannot throw.
    explicit NoGrad(Tape<T>& tape)
        : tape_(tape), held_(tape.hold_for_this_thread("NoGrad")), previous_(tape.grad_enabled()) {
        tape.grad_enabled_ = false;
    }
    ~NoGrad() {
        tape_.grad_enabled_ = previous_;
        if (held_) tape_.end_hold();
    }
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;

private:
    Tape<T>& tape_;
    bool held_;
    bool previous_;
};

// ---- inline template members ----

template <class T>
void Var<T>::reject_unusable(const char* op) const {
    if (tape_ == nullptr)
        throw Error(std::string(op) + ": the handle was never recorded on a tape (a default-constructed Var)");
    throw Error(std::string(op) + ": stale handle: its tape was reset or destroyed after it was recorded");
}

template <class T>
const Matrix<T>& Var<T>::value() const {
    // A live handle's index is below its tape's size: the registry check is the whole check.
    require_live("Var::value");
    if (tape_->nodes_[index_].replay_owned & Node<T>::replay_value)
        tape_->reject_replay_owned(index_, "Var::value", "value");
    return tape_->value(index_);
}

// Without the copy value() makes of an inline value (Node::in_line): shapes are asked per op.
template <class T>
Shape Var<T>::shape() const {
    require_live("Var::shape");
    if (tape_->nodes_[index_].replay_owned & Node<T>::replay_value)
        tape_->reject_replay_owned(index_, "Var::shape", "value");
    return tape_->value_shape(index_);
}

// Held for the length of every call that changes the tape (record, leaves, backward,
// reset): a second thread entering meanwhile throws before it touches anything.
template <class T>
class Tape<T>::ExclusiveUse {
public:
    ExclusiveUse(Tape& tape, const char* op) : tape_(tape), locked_(tape.lock_for(op)) {}
    ~ExclusiveUse() {
        if (locked_) tape_.unlock();
    }
    ExclusiveUse(const ExclusiveUse&) = delete;
    ExclusiveUse& operator=(const ExclusiveUse&) = delete;

private:
    Tape& tape_;
    bool locked_;
};

// False when this thread's NoGrad already holds the tape.
template <class T>
inline bool Tape<T>::lock_for(const char* op) {
    if (held_by_this_thread()) return false;
    if (busy_.exchange(true, std::memory_order_acquire)) reject_concurrent_use(op);
    return true;
}

template <class T>
inline bool Tape<T>::hold_for_this_thread(const char* who) {
    if (held_by_this_thread()) return false;  // an outer NoGrad (or op) holds it
    if (busy_.exchange(true, std::memory_order_acquire)) reject_concurrent_use(who);
    held_by_.store(this_thread_token(), std::memory_order_relaxed);
    return true;
}

template <class T>
inline const Matrix<T>& Tape<T>::parameter_value(const Node<T>& n) const {
    const NodeExtras<T>& leaf = n.in_place_record();
    if (detail::TapeRegistry::generation(leaf.parameter_slot).load(std::memory_order_acquire) != leaf.parameter_identity)
        reject_parameter(n);
    return n.parameter->value;
}

// A count changes the tape (an entry whose last handle goes is reused), so counting is a use
// of it: free for the thread that holds it (a NoGrad scope's, the hot path, inline), locked
// for any other (out of line). A copy made while another thread uses the tape throws; a
// handle destroyed meanwhile leaves its entry counted, to be reclaimed at reset(), instead of
// racing with that thread. Liveness is asked again once locked: the tape may have been reset
// in between.
template <class T>
void Var<T>::retain() const {
    if (!live()) return;
    if (tape_->held_by_this_thread())
        ++tape_->refs_[index_];
    else
        retain_unheld();
}

template <class T>
void Var<T>::release() noexcept {
    if (!live()) return;
    if (!tape_->held_by_this_thread()) return release_unheld();
    if (--tape_->refs_[index_] == 0) tape_->recycle(index_);
}

template <class T>
void Var<T>::retain_unheld() const {
    typename Tape<T>::ExclusiveUse one_thread(*tape_, "Var (a copy of a handle recorded under NoGrad)");
    if (live()) ++tape_->refs_[index_];
}

template <class T>
void Var<T>::release_unheld() noexcept {
    Tape<T>& tape = *tape_;
    if (tape.busy_.exchange(true, std::memory_order_acquire)) return;  // in use: counted until reset()
    if (live() && --tape.refs_[index_] == 0) tape.recycle(index_);
    tape.unlock();
}

template <class T>
template <class Forward>
Var<T> Tape<T>::record(const char* op, std::initializer_list<InputRef<T>> inputs, Shape shape,
                       BackwardFn<T> backward, Forward&& forward) {
    ExclusiveUse one_thread(*this, op);
    if (inputs.size() > 3) reject_arity(op);
    std::size_t value_bytes = 0;
    if (!multiply_fits(shape.rows, shape.cols, value_bytes) || !multiply_fits(value_bytes, sizeof(T), value_bytes))
        reject_shape(op, shape);
    bool any_input_needs_grad = false;
    for (const InputRef<T>& in : inputs) {
        check(*in, op);
        // Under NoGrad nothing needs a gradient: the inputs' entries are not even read.
        any_input_needs_grad = any_input_needs_grad || (grad_enabled_ && nodes_[in->index_].requires_grad);
    }
    const std::uint32_t index = push(op, value_bytes);
    Node<T>& n = nodes_[index];
    try {
        n.arity = static_cast<std::uint8_t>(inputs.size());
        std::size_t i = 0;
        for (const InputRef<T>& in : inputs) n.inputs[i++] = in->index_;
        n.requires_grad = grad_enabled_ && any_input_needs_grad && backward != nullptr;
        n.backward = n.requires_grad ? backward : nullptr;
        n.forward = nullptr;  // a capturing lambda cannot be run again
        ensure_shape(n.value, shape);
        forward(n);
        // A user's forward may have replaced the value: the ops that read it trust its shape.
        if (n.value.shape()[0] != shape.rows || n.value.shape()[1] != shape.cols) reject_value_shape(n, shape);
        // A NoGrad entry read by an entry that may be swept (or replayed) must stay; pinned
        // once the entry is recorded, so that one abandoned pins nothing.
        if (grad_enabled_)
            for (std::size_t k = 0; k < i; ++k) pin(n.inputs[k]);
    } catch (...) {
        abandon(index);  // the tape is as it was before this call
        throw;
    }
    recorded_bytes_ += n.value.size() * sizeof(T);
    if (detect_anomaly_) check_new_value(index);
    return handle(index);
}

// The entry the next recording fills: a NoGrad entry no handle refers to any more when
// recording under NoGrad, else the next one in order (spare ones keep their buffers).
template <class T>
std::uint32_t Tape<T>::push(const char* op, std::size_t value_bytes) {
    if (swept_ || held_by_replay_) reject_after_backward(op);
    if (memory_limit_ != 0 && held_bytes(value_bytes) > memory_limit_) reject_memory(op, value_bytes);
    std::uint32_t index;
    last_push_reused_ = !grad_enabled_ && take_released(value_bytes / sizeof(T), index);
    if (!last_push_reused_) {
        if (size_ == nodes_.size()) add_entry();
        index = static_cast<std::uint32_t>(size_++);
        // A tape recorded again writes entries the cache lost long ago (a recurrent model's):
        // the lines a recording writes, eight entries ahead (its first line, and the inline
        // block's first two: a 14x1 value). 100,000 chained muls: 46 -> 35 ns an entry.
        if (index + 8 < nodes_.size()) {
            const Node<T>& ahead = nodes_[index + 8];
            __builtin_prefetch(&ahead, 1);
            __builtin_prefetch(&ahead.small, 1);
            __builtin_prefetch(reinterpret_cast<const char*>(&ahead.small) + 64, 1);
        }
    }
    refs_[index] = grad_enabled_ ? pinned : 0;
    Node<T>& n = nodes_[index];
    n.flags = grad_enabled_ ? 0 : Node<T>::under_nograd;
    n.replay_owned = 0;
    n.op = op;
    n.arity = 0;
    n.backward = nullptr;
    n.forward = nullptr;
    n.scalar = T(0);
    // An entry reused holds what its last op left in extras: the labels too, so that an entry
    // recorded by an op that takes none does not show another's (capacity kept).
    if (n.extras) n.extras->params = {}, n.extras->scalar2 = T(0), n.extras->labels.clear();
    n.parameter = nullptr;
    n.requires_grad = false;
    return index;
}

template <class T>
void Tape<T>::recycle(std::uint32_t index) noexcept {
    Node<T>& n = nodes_[index];
    if (!n.reads_in_place()) recorded_bytes_ -= n.value.size() * sizeof(T);
    forget_recording(n, "(released under NoGrad)");  // its inputs may be reused in turn
    // Field by field into place (capacity reserved in push()): push_back of a {index, size}
    // built on the stack compiled to two narrow stores read back as one 16-byte load, which
    // the store buffer cannot forward: a stall that was 5% of a recurrent model's evaluation.
    Released& released = free_.emplace_back();
    released.index = index;
    released.size = n.value.size();
}

// Inline: every backward calls it once per input.
template <class T>
inline GradientSink<T> Tape<T>::grad_of(const Node<T>& n, int i) {
    const std::uint32_t index = n.inputs[check_input(n, i)];
    Node<T>& in = nodes_[index];
    if (in.in_line()) return detour_grad(index);
    // A parameter recorded under NoGrad takes no gradient, but a user's backward that skipped
    // needs_grad (rule 3 of docs/custom_ops.md) wrote one straight into its Parameter::grad,
    // for an optimizer to move the frozen parameter, silently (found by an attack). The
    // library's ops never ask for it.
    if (in.parameter != nullptr && !in.requires_grad) reject_grad_for_nograd_parameter(n, i);
    const bool overwrite = claim_gradient(index, in.parameter != nullptr);
    Matrix<T>& g = grad_buffer(in);
    if (overwrite) ensure_shape(g, shape_of(value_of(in)));
    return {g, overwrite};
}

template <class T>
template <class Setup>
Var<T> Tape<T>::record_op(const char* op, std::initializer_list<InputRef<T>> inputs, Shape shape,
                          ForwardFn<T> forward, BackwardFn<T> backward, Setup&& setup) {
    return record(op, inputs, shape, backward, [&](Node<T>& n) {
        setup(n);
        forward(*this, n);
        n.forward = forward;
    });
}

}  // namespace autodiff
