#pragma once
/// @file
/// Parameters held by address by an object that outlives a single call (the Trainer, a
/// DataParallel): each with its identity and its name as listed, so that one destroyed or moved
/// from since is refused by name instead of read in freed memory, as the optimizers and the
/// Module refuse theirs.

#include <cstddef>
#include <string>
#include <vector>

#include "autodiff/error.hpp"
#include "autodiff/tape.hpp"

namespace nn {

/// Parameters listed by address, asked whether each still lives before they are read.
template <class T>
class ListedParameters {
public:
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    /// A null pointer is left out: the holder refuses it itself.
    explicit ListedParameters(const std::vector<autodiff::Parameter<T>*>& parameters) {
        for (const autodiff::Parameter<T>* p : parameters)
            if (p != nullptr) identities_.emplace_back(*p), names_.push_back(p->name);
    }
    std::size_t size() const { return identities_.size(); }
    /// The first parameter destroyed or moved from since it was listed, or `none`. The loop
    /// alone, no message: an optimizer asks it of every parameter at every step, and with the
    /// message's code beside it the loop reloaded its bounds every parameter (230
    /// instructions an S step).
    std::size_t first_gone() const {
        const autodiff::ParameterIdentity<T>* identity = identities_.data();
        for (std::size_t i = 0, n = identities_.size(); i < n; ++i)
            if (!identity[i].alive()) return i;
        return none;
    }
    /// Its name as it was when listed.
    const std::string& name(std::size_t i) const { return names_[i]; }
    /// Throws autodiff::Error unless every parameter listed lives still: "<who>: parameter '<name>'
    /// was destroyed or moved from after <holder> was made; <advice>".
    void require_alive(const char* who, const char* holder, const char* advice) const {
        const std::size_t gone = first_gone();
        if (gone != none)
            throw autodiff::Error(std::string(who) + ": parameter '" + names_[gone] + "' was destroyed or moved from after " +
                                  holder + " was made; " + advice);
    }

private:
    std::vector<autodiff::ParameterIdentity<T>> identities_;
    std::vector<std::string> names_;
};

}  // namespace nn
