#pragma once
/// @file
/// An MLP and its optimizer as a checkpoint (nn/io/checkpoint.hpp): W1.npy, b1.npy, ... load
/// with numpy.load; the manifest records layer sizes, activation, epoch and optimizer.

#include <filesystem>
#include <memory>

#include "nn/io/checkpoint.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"

namespace nn {

/// settings: how the run was trained (seed, batch size, schedule...), kept in the manifest
/// as "train.<key>", so that a resumed run can use or check them.
template <class T>
void save_model(const std::filesystem::path& dir, const MLP<T>& net, const Optimizer<T>& optimizer, std::size_t epoch,
                const std::map<std::string, std::string>& settings = {});

template <class T>
struct LoadedModel {
    std::unique_ptr<MLP<T>> net;
    std::size_t epoch = 0;        ///< epochs completed when it was saved
    std::string optimizer;        ///< its name; its state is restored by restore_optimizer
    Checkpoint checkpoint;
};

/// Builds the network the manifest describes, with the saved weights.
template <class T>
LoadedModel<T> load_model(const std::filesystem::path& dir);

/// Copies the saved weights into an existing network: throws DataError naming the layer
/// and both shapes if the checkpoint does not fit it. A loss recorded before the load
/// refuses backward(), as after an optimizer's step.
template <class T>
void load_weights(const Checkpoint& checkpoint, MLP<T>& net);

/// Restores the optimizer's state (velocities, moments) saved with the model.
template <class T>
void restore_optimizer(const Checkpoint& checkpoint, Optimizer<T>& optimizer);

}  // namespace nn
