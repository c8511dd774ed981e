#pragma once
/// @file
/// Embedding: a dim x vocab table ("table", N(0, 1) as torch.nn.Embedding) whose column id
/// is token id's vector; m ids give a dim x m batch, one column per example.

#include <cstdint>
#include <string>

#include "autodiff/ops.hpp"
#include "nn/module.hpp"

namespace nn {

template <class T = double>
class Embedding : public Module<T> {
public:
    Embedding(std::size_t vocabulary, std::size_t dim, std::uint32_t seed = 0);
    /// The vectors of `ids` (each < vocabulary), recorded on `tape`.
    autodiff::Var<T> operator()(autodiff::Tape<T>& tape, const autodiff::Labels& ids);
    /// For Sequential: x is 1 x m and holds whole-number ids (it gets no gradient).
    autodiff::Var<T> forward(autodiff::Var<T> x) override;
    using Module<T>::operator();

    std::size_t vocabulary() const { return table.value.shape()[1]; }
    std::size_t dim() const { return table.value.shape()[0]; }
    std::string type() const override { return "Embedding"; }
    std::string describe() const override;
    /// False: forward reads the ids from x's value, outside the tape, so a replay would
    /// gather the first batch's tokens again.
    bool replayable() const override { return false; }

    autodiff::Parameter<T>& table;

private:
    /// id as a column index; throws naming `example` unless it is a whole number < vocabulary().
    std::size_t token_id(T id, std::size_t example) const;

    autodiff::Labels ids_;  // reused
};

}  // namespace nn
