#pragma once
// An object's identity in the registry (tape_registry.hpp), for an object others hold by
// address that may be destroyed or moved from before them (a Parameter, a data-parallel
// sync): the object owns a slot holding the identity it has now, and a holder keeps a
// RegistryWitness of it. Whether the object is still the one it was is then asked of the
// slot, which is never freed, without touching the object. Identities are written with
// release order and read with acquire, so a holder that finds the identity it kept also sees
// everything the object's thread did before taking it.

#include <atomic>
#include <cstdint>
#include <utility>

#include "autodiff/tape_registry.hpp"

namespace autodiff::detail {

/// What a holder keeps of an object's identity: where it lives and what it was.
struct RegistryWitness {
    // The slot's address is kept, not its number: the registry never frees a slot, and the
    // check is then one load (an optimizer asks it of every parameter at every step).
    const std::atomic<std::uint64_t>* generation = nullptr;  // null: a witness of no object
    std::uint64_t identity = 0;

    bool empty() const { return generation == nullptr; }
    /// Whether the object is still the one witnessed (not destroyed, moved from or renewed
    /// since). Only for a witness that is not empty().
    bool still_holds() const { return generation->load(std::memory_order_acquire) == identity; }
};

/// A registry slot owned by one object, and the identity the object has in it now.
class RegistryIdentity {
public:
    /// A slot of its own, under a new identity.
    RegistryIdentity() : slot_(TapeRegistry::acquire()) { renew(); }
    /// Takes other's slot under a new identity (witnesses of other no longer hold); other is
    /// left without one, as this one is if other had none.
    RegistryIdentity(RegistryIdentity&& other) noexcept : slot_(std::exchange(other.slot_, no_slot)) { renew(); }
    /// The same, giving up this object's own slot first.
    RegistryIdentity& operator=(RegistryIdentity&& other) noexcept {
        if (this == &other) return *this;
        release();
        slot_ = std::exchange(other.slot_, no_slot);
        renew();
        return *this;
    }
    RegistryIdentity(const RegistryIdentity&) = delete;
    RegistryIdentity& operator=(const RegistryIdentity&) = delete;
    /// Every witness of the object then finds it gone.
    ~RegistryIdentity() { release(); }

    /// A new identity in the same slot: witnesses taken before no longer hold. Nothing
    /// without a slot.
    void renew() noexcept {
        if (slot_ == no_slot) return;
        identity_ = TapeRegistry::next_generation();
        TapeRegistry::generation(slot_).store(identity_, std::memory_order_release);
    }
    /// False once moved from.
    bool has_slot() const { return slot_ != no_slot; }
    std::uint32_t slot() const { return slot_; }
    /// Unique across the registry, never 0. A moved-from object keeps the one it last had.
    std::uint64_t identity() const { return identity_; }
    /// What a holder keeps; empty once moved from.
    RegistryWitness witness() const {
        return has_slot() ? RegistryWitness{&TapeRegistry::generation(slot_), identity_} : RegistryWitness{};
    }

private:
    static constexpr std::uint32_t no_slot = ~std::uint32_t(0);
    void release() noexcept {
        if (slot_ != no_slot) TapeRegistry::release(std::exchange(slot_, no_slot));
    }
    std::uint32_t slot_;
    std::uint64_t identity_ = 0;
};

}  // namespace autodiff::detail
