#pragma once
/// @file
/// How a training loop shares its steps with other processes, as an interface, so that nn
/// knows nothing of MPI: nn::distributed::DataParallel implements it. Each global batch is
/// split between ranks (nn/distributed/shard.hpp); every rank calls begin_step() with its
/// share, records and sweeps its examples, then finish(), after which every rank holds the
/// global batch's mean gradient.

#include <cstddef>

#include "autodiff/tape.hpp"

namespace nn {

template <class T>
class GradientSync {
public:
    virtual ~GradientSync() = default;
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
};

}  // namespace nn
