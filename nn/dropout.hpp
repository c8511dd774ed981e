#pragma once
/// @file
/// Dropout: in training mode each element is zeroed with probability p and the rest scaled
/// by 1 / (1 - p); in evaluation mode the input passes through unchanged.
///
/// The mask comes from a counter-based generator (autodiff::CounterRng): the layer's seed and
/// a counter of the numbers drawn so far. The counter is a buffer ("counter", saved with the
/// model), so a run resumed from a checkpoint draws exactly the masks it would have drawn.

#include <cstdint>
#include <string>

#include "autodiff/ops.hpp"
#include "nn/module.hpp"

namespace nn {

template <class T = double>
class Dropout : public Module<T> {
public:
    explicit Dropout(double p = 0.5, std::uint64_t seed = 0);
    autodiff::Var<T> forward(autodiff::Var<T> x) override;

    double p() const { return p_; }
    /// Position of the next draw in the seed's stream.
    std::uint64_t counter() const;
    std::string type() const override { return "Dropout"; }
    std::string describe() const override;

private:
    void set_counter(std::uint64_t counter);
    double p_;
    std::uint64_t seed_;
    // The counter in three 21-bit pieces: whole numbers below 2^24 are exact in float too.
    autodiff::Matrix<T>& counter_;
};

}  // namespace nn
