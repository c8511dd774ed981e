/// @file
/// nn::notebook: the seed notebook's hand-written backprop (seed/000_9df856a9e0b77cb9.txt), ported
/// to C++ and generalised from its three layers to any number: ReLU hidden layers, softmax output.
///
/// It uses no autodiff on purpose: it is the independent reference the engine is proven against,
/// so it keeps the notebook's names and steps rather than sharing code with the engine.
///
/// Layout as in the notebook: W^[l] is n_l x n_(l-1), b^[l] is n_l x 1, activations are
/// features x examples (X is A^[0], 5 x m in the notebook). Layer vectors are 0-based, so index
/// l holds the notebook's layer l+1: W[0] is W1, Z[2] is Z3, A.back() is the softmax output A3.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "nn/numpy_random.hpp"

namespace nn::notebook {

template <class T>
using Matrix = xt::xtensor<T, 2>;

/// The notebook's `parameters = (W1, b1, W2, b2, W3, b3)`.
template <class T>
struct Parameters {
    std::vector<Matrix<T>> W, b;
};

/// The notebook's `pass_activations = (Z1, A1, Z2, A2, Z3, A3)`.
template <class T>
struct Activations {
    std::vector<Matrix<T>> Z, A;
};

/// The notebook's `pass_gradients = (dL_dW1, dL_db1, ..., dL_dW3, dL_db3)`.
template <class T>
struct Gradients {
    std::vector<Matrix<T>> dW, db;
};

/// The notebook's network (5 features, two hidden layers of 10, 4 classes) and its step size.
inline const std::vector<std::size_t> notebook_layer_sizes{5, 10, 10, 4};
inline constexpr double notebook_learning_rate = 0.01;

template <class T>
Matrix<T> relu(const Matrix<T>& Z);
/// Column-wise (axis 0) softmax, shifted by each column's max so exp cannot overflow.
template <class T>
Matrix<T> softmax(const Matrix<T>& Z);
/// The notebook returns the boolean mask `Z > 0`; here it is that mask as 0/1 numbers.
template <class T>
Matrix<T> relu_derivative(const Matrix<T>& Z);

/// For each layer in order: W = randn(n_l, n_(l-1)) * 0.01, then b = randn(n_l, 1) * 0.01, drawn
/// from rng as it stands (the notebook's init_parameters reseeds with 1 first: do that yourself,
/// or use notebook_execution). layer_sizes = {inputs, hidden..., classes}, at least two entries,
/// each at least 1.
template <class T>
Parameters<T> init_parameters(NumpyRandom& rng, const std::vector<std::size_t>& layer_sizes);

template <class T>
Activations<T> forward_prop(const Matrix<T>& X, const Parameters<T>& parameters);

/// Y is one-hot, classes x examples, exactly as the notebook's `np.eye(4)[labels].T`.
template <class T>
Gradients<T> backward_prop(const Matrix<T>& X, const Matrix<T>& Y, const Parameters<T>& parameters,
                           const Activations<T>& forwardpass_activations);

template <class T>
Parameters<T> update_parameters(const Parameters<T>& parameters, const Gradients<T>& pass_gradients,
                                T learning_rate);

/// np.eye(classes)[labels].T: classes x labels.size(), a single 1 per column.
template <class T>
Matrix<T> one_hot(const std::vector<std::int64_t>& labels, std::size_t classes);

/// What the notebook's "Execution" cell builds before its first forward pass.
template <class T>
struct NotebookExecution {
    Matrix<T> X, Y;
    Parameters<T> parameters;
};

/// Replays that cell: seed 1, X = rand(5, 10), Y = one-hot of choice(4, 10), then init_parameters,
/// which reseeds with 1, so W1 starts the stream again rather than continuing after Y.
template <class T>
NotebookExecution<T> notebook_execution();

}  // namespace nn::notebook
