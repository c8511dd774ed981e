#pragma once
/// @file
/// Checkpoints of any nn::Module, on top of nn/io/checkpoint.hpp (atomic, verified, NumPy-readable):
///   <name>.npy            every parameter and buffer under its full name ("conv1.W.npy",
///                         "bn.running_mean.npy"), in the model's dtype
///   optimizer.<key>.npy   the optimizer's state (moments, velocities, step count)
///   manifest.json         "module" (the model's describe()), "dtype", "optimizer" and its
///                         hyper-parameters ("optimizer.<name>"), the model's full names of the
///                         optimizer's parameters in the order of its state ("optimizer.parameters"),
///                         and the caller's own entries
/// Loading into a model refuses, listing every one, names the model has and the file lacks,
/// names the file has and the model lacks, and arrays whose shape differs; nothing is
/// changed unless everything fits. Saving what was loaded writes the same bytes again.

#include <filesystem>
#include <map>
#include <string>

#include "nn/io/checkpoint.hpp"
#include "nn/module.hpp"
#include "nn/optimizers.hpp"

namespace nn {

/// `meta`: the caller's entries (epoch, training settings...); the keys "module", "dtype",
/// "optimizer" and "optimizer.*" are the checkpoint's own and are refused.
template <class T>
void save(const std::filesystem::path& dir, Module<T>& model, const Optimizer<T>& optimizer,
          const std::map<std::string, std::string>& meta = {});
/// A model alone, without optimizer state.
template <class T>
void save(const std::filesystem::path& dir, Module<T>& model, const std::map<std::string, std::string>& meta = {});

/// Reads `dir` into `model` (and the optimizer's state into `optimizer`, which must be of
/// the kind saved, over parameters of the names saved, in the same order); returns the
/// checkpoint, whose meta holds the caller's entries. The weights change in place, as an
/// optimizer's step changes them: a loss recorded before the load refuses backward().
template <class T>
Checkpoint load(const std::filesystem::path& dir, Module<T>& model, Optimizer<T>& optimizer);
template <class T>
Checkpoint load(const std::filesystem::path& dir, Module<T>& model);

/// The parameters and buffers of `model` as a Checkpoint's arrays (what save writes), and back.
template <class T>
void store_module(Checkpoint& checkpoint, Module<T>& model);
/// DataError listing missing, extra and mis-shaped names; `where` names the source in messages.
template <class T>
void restore_module(const Checkpoint& checkpoint, Module<T>& model, const std::string& where);

}  // namespace nn
