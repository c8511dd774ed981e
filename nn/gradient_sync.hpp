#pragma once
/// @file
/// How a training loop shares its steps with other processes, as an interface, so that nn
/// knows nothing of MPI: nn::distributed::DataParallel implements it. Each global batch is
/// split between ranks (nn/distributed/shard.hpp); every rank calls begin_step() with its
/// share, records and sweeps its examples, then finish(), after which every rank holds the
/// global batch's mean gradient.

#include <cstddef>
#include <string>

#include "autodiff/registry_identity.hpp"
#include "autodiff/tape.hpp"

namespace nn {

template <class T>
class GradientSync {
public:
    GradientSync() = default;
    GradientSync(const GradientSync&) {}  // a copy is another object, with an identity of its own
    GradientSync& operator=(const GradientSync&) { return *this; }
    virtual ~GradientSync() = default;  // identity_ gives up its slot: hook_owner() then finds it gone
    virtual int rank() const = 0;   ///< this process, 0 .. ranks() - 1
    virtual int ranks() const = 0;  ///< how many processes share each batch
    /// Lets the sync start work during this tape's backward sweeps.
    virtual void attach(autodiff::Tape<T>& tape) = 0;
    /// Undoes attach(): the tape's sweeps no longer call the sync.
    virtual void detach(autodiff::Tape<T>& tape) = 0;
    /// This rank computes the mean loss over `local` of the batch's `global` examples.
    virtual void begin_step(std::size_t local, std::size_t global) = 0;
    /// After the backward: Parameter::grad holds the global batch's mean gradient on every rank.
    virtual void finish() = 0;
    /// values[0..n) replaced by their sum over the ranks (epoch statistics).
    virtual void sum(double* values, std::size_t n) = 0;

    /// This object's identity, for attach() to give Tape::set_gradient_ready_hook: a tape
    /// outliving the sync then refuses to call it (backward throws) instead of calling into
    /// freed memory.
    autodiff::HookOwner hook_owner() const { return autodiff::HookOwner(identity_); }

private:
    // A registry slot, as a Parameter has: whether this object still lives is asked of the
    // slot, which is never freed, without touching the object (hook_owner()).
    autodiff::detail::RegistryIdentity identity_;
};

/// A GradientSync held by address (set_gradient_sync's): one destroyed first is refused,
/// naming the caller, instead of called in freed memory (found by an attack: a Trainer whose
/// sync was destroyed before its next epoch called it, and so did its tapes' sweeps).
template <class T>
class HeldSync {
public:
    HeldSync() = default;
    explicit HeldSync(GradientSync<T>* sync) : sync_(sync), owner_(sync ? sync->hook_owner() : autodiff::HookOwner{}) {}
    /// The sync if it still lives; null if none was given or it was destroyed.
    GradientSync<T>* live() const { return sync_ != nullptr && owner_.alive() ? sync_ : nullptr; }
    /// The sync (null when none was given); throws, naming `who`, if it was destroyed.
    GradientSync<T>* get(const char* who) const {
        GradientSync<T>* sync = live();
        if (sync == nullptr && sync_ != nullptr) reject_destroyed(who);
        return sync;
    }

private:
    [[noreturn, gnu::cold, gnu::noinline]] static void reject_destroyed(const char* who) {
        throw autodiff::Error(std::string(who) + ": the GradientSync given to set_gradient_sync was destroyed "
                              "first; give set_gradient_sync(nullptr) (or another sync) before destroying it");
    }

    GradientSync<T>* sync_ = nullptr;
    autodiff::HookOwner owner_;
};

}  // namespace nn
