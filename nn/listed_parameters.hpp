#pragma once
/// @file
/// Parameters held by address by an object that outlives a single call (the Trainer, a
/// DataParallel): each with its identity and its name as listed, so that one destroyed or moved
/// from since is refused by name instead of read in freed memory, as the optimizers and the
/// Module refuse theirs.

#include <string>
#include <vector>

#include "autodiff/error.hpp"
#include "autodiff/tape.hpp"

namespace nn {

/// Parameters listed by address, asked whether each still lives before they are read.
template <class T>
class ListedParameters {
public:
    /// A null pointer is left out: the holder refuses it itself.
    explicit ListedParameters(const std::vector<autodiff::Parameter<T>*>& parameters) {
        for (const autodiff::Parameter<T>* p : parameters)
            if (p != nullptr) listed_.push_back({autodiff::ParameterIdentity<T>(*p), p->name});
    }
    /// Throws autodiff::Error unless every parameter listed lives still: "<who>: parameter '<name>'
    /// was destroyed or moved from after <holder> was made; <advice>".
    void require_alive(const char* who, const char* holder, const char* advice) const {
        for (const Listed& p : listed_)
            if (!p.identity.alive())
                throw autodiff::Error(std::string(who) + ": parameter '" + p.name +
                                      "' was destroyed or moved from after " + holder + " was made; " + advice);
    }

private:
    struct Listed {
        autodiff::ParameterIdentity<T> identity;
        std::string name;  // as it was when listed
    };
    std::vector<Listed> listed_;
};

}  // namespace nn
