#include "nn/notebook/notebook_backprop.hpp"

#include <cmath>
#include <string>
#include <utility>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "autodiff/error.hpp"
#include "nn/allocate.hpp"

namespace nn::notebook {

namespace {

template <class T>
std::string shape_of(const Matrix<T>& m) {
    return std::to_string(m.shape(0)) + "x" + std::to_string(m.shape(1));
}

// The notebook's 1-based names: layer index 0 is "W1", "A1", ...
std::string name(const char* quantity, std::size_t layer) { return quantity + std::to_string(layer + 1); }

[[noreturn]] void shape_error(const char* function, const std::string& what) {
    throw autodiff::Error(std::string(function) + ": " + what +
                          " (W is out x in, b is out x 1, activations are features x examples)");
}

// Checks every W^[l] and b^[l] against A^[l-1], starting from X = A^[0].
template <class T>
void check_shapes(const char* function, const Matrix<T>& X, const Parameters<T>& parameters) {
    if (parameters.W.empty() || parameters.W.size() != parameters.b.size()) {
        shape_error(function, "parameters hold " + std::to_string(parameters.W.size()) + " W and " +
                                  std::to_string(parameters.b.size()) +
                                  " b; need the same number, at least one");
    }
    std::size_t rows_in = X.shape(0);
    std::string input_name = "X";
    for (std::size_t l = 0; l < parameters.W.size(); ++l) {
        const Matrix<T>& W = parameters.W[l];
        const Matrix<T>& b = parameters.b[l];
        // A layer of no units made an output of no rows, which backward_prop's arithmetic then
        // refused inside xtensor, naming nothing (found by an attack).
        if (W.size() == 0) {
            shape_error(function, name("W", l) + " is " + shape_of(W) +
                                      ": every layer needs at least one unit, and X at least one feature");
        }
        if (W.shape(1) != rows_in) {
            shape_error(function, name("W", l) + " is " + shape_of(W) + " but " + input_name + " has " +
                                      std::to_string(rows_in) + " rows (" + name("W", l) +
                                      ".cols must equal " + input_name + ".rows)");
        }
        if (b.shape(0) != W.shape(0) || b.shape(1) != 1) {
            shape_error(function, name("b", l) + " is " + shape_of(b) + " but must be " +
                                      std::to_string(W.shape(0)) + "x1 to match " + name("W", l) + " " +
                                      shape_of(W));
        }
        rows_in = W.shape(0);
        input_name = name("A", l);
    }
}

// NumPy adds a contiguous row pairwise (pairwise_sum in numpy/core/src/umath/loops_utils.h.src):
// under 8 terms in order; up to 128 terms in eight interleaved partial sums; beyond that, two
// halves split at a multiple of 8. Summing in the same order makes db equal NumPy's to the last
// bit; a left-to-right sum is off by ~1e-18 on the notebook's data.
template <class T>
T numpy_pairwise_sum(const T* a, std::size_t n) {
    if (n < 8) {
        T sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += a[i];
        return sum;
    }
    if (n <= 128) {
        T r[8];
        for (std::size_t k = 0; k < 8; ++k) r[k] = a[k];
        std::size_t i = 8;
        for (; i + 8 <= n; i += 8) {
            for (std::size_t k = 0; k < 8; ++k) r[k] += a[i + k];
        }
        T sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) sum += a[i];
        return sum;
    }
    const std::size_t half = n / 2 - (n / 2) % 8;
    return numpy_pairwise_sum(a, half) + numpy_pairwise_sum(a + half, n - half);
}

// The notebook's `np.sum(dL_dZ, axis=1, keepdims=True)`: one sum per neuron over the examples.
template <class T>
Matrix<T> sum_over_examples(const Matrix<T>& dL_dZ) {
    const std::size_t neurons = dL_dZ.shape(0), examples = dL_dZ.shape(1);
    Matrix<T> sums = xt::empty<T>({neurons, std::size_t{1}});
    for (std::size_t i = 0; i < neurons; ++i) {
        sums(i, 0) = numpy_pairwise_sum(dL_dZ.data() + i * examples, examples);
    }
    return sums;
}

}  // namespace

template <class T>
Matrix<T> relu(const Matrix<T>& Z) {
    return xt::maximum(Z, T(0));
}

template <class T>
Matrix<T> softmax(const Matrix<T>& Z) {
    // Each reduction is materialised before it is broadcast: in xtensor 0.24.3 a lazy keep_dims
    // reduction inside a broadcast expression computes garbage.
    const Matrix<T> column_max = xt::amax(Z, {0}, xt::keep_dims);
    const Matrix<T> z_exp = xt::exp(Z - column_max);
    const Matrix<T> column_sum = xt::sum(z_exp, {0}, xt::keep_dims);
    return z_exp / column_sum;
}

template <class T>
Matrix<T> relu_derivative(const Matrix<T>& Z) {
    return xt::cast<T>(Z > T(0));
}

template <class T>
Parameters<T> init_parameters(NumpyRandom& rng, const std::vector<std::size_t>& layer_sizes) {
    if (layer_sizes.size() < 2) {
        throw autodiff::Error("init_parameters: layer_sizes needs inputs and outputs, got " +
                              std::to_string(layer_sizes.size()) + " entries");
    }
    for (std::size_t l = 0; l < layer_sizes.size(); ++l) {
        if (layer_sizes[l] != 0) continue;
        std::string sizes;
        for (std::size_t n : layer_sizes) sizes += (sizes.empty() ? "" : ", ") + std::to_string(n);
        throw autodiff::Error("init_parameters: layer size " + std::to_string(l) + " (of " + sizes +
                              ") is 0: every layer needs at least one unit, and the input at least one feature");
    }
    Parameters<T> parameters;
    for (std::size_t l = 1; l < layer_sizes.size(); ++l) {
        // Scaled in double, as numpy does, before any narrowing to T.
        parameters.W.push_back(xt::cast<T>(rng.randn(layer_sizes[l], layer_sizes[l - 1]) * 0.01));
        parameters.b.push_back(xt::cast<T>(rng.randn(layer_sizes[l], 1) * 0.01));
    }
    return parameters;
}

template <class T>
Activations<T> forward_prop(const Matrix<T>& X, const Parameters<T>& parameters) {
    check_shapes("forward_prop", X, parameters);
    const std::size_t layers = parameters.W.size();
    Activations<T> pass_activations;
    for (std::size_t l = 0; l < layers; ++l) {
        const Matrix<T>& A_prev = l == 0 ? X : pass_activations.A.back();
        // Z1 = W1 @ X + b1, Z2 = W2 @ A1 + b2, ...
        Matrix<T> Z = xt::linalg::dot(parameters.W[l], A_prev) + parameters.b[l];
        // A1 = relu(Z1), A2 = relu(Z2), ..., and the last layer A3 = softmax(Z3).
        Matrix<T> A = l + 1 < layers ? relu(Z) : softmax(Z);
        pass_activations.Z.push_back(std::move(Z));
        pass_activations.A.push_back(std::move(A));
    }
    return pass_activations;
}

template <class T>
Gradients<T> backward_prop(const Matrix<T>& X, const Matrix<T>& Y, const Parameters<T>& parameters,
                           const Activations<T>& forwardpass_activations) {
    check_shapes("backward_prop", X, parameters);
    const std::size_t layers = parameters.W.size();
    const auto& [Z, A] = forwardpass_activations;
    if (Z.size() != layers || A.size() != layers) {
        shape_error("backward_prop", "activations hold " + std::to_string(Z.size()) + " Z and " +
                                         std::to_string(A.size()) + " A for " + std::to_string(layers) +
                                         " layers; pass what forward_prop returned");
    }
    // Each Z and A must be what forward_prop made of X: a 1x1 Z broadcast silently into a
    // wrong gradient, a mis-sized A failed in the dot product without a name.
    for (std::size_t l = 0; l < layers; ++l) {
        const std::size_t rows = parameters.W[l].shape(0), examples = X.shape(1);
        for (const auto& [quantity, M] : {std::pair{"Z", &Z[l]}, std::pair{"A", &A[l]}}) {
            if (M->shape(0) != rows || M->shape(1) != examples) {
                shape_error("backward_prop", name(quantity, l) + " is " + shape_of(*M) + " but must be " +
                                                 std::to_string(rows) + "x" + std::to_string(examples) + " (" +
                                                 name("W", l) + " rows x X's examples); pass what forward_prop returned");
            }
        }
    }
    const Matrix<T>& A_out = A.back();
    if (Y.shape() != A_out.shape()) {
        shape_error("backward_prop", "Y is " + shape_of(Y) + ", " + name("A", layers - 1) + " is " +
                                         shape_of(A_out) + " and X is " + shape_of(X) +
                                         " (Y must be one-hot classes x examples, as many examples as X)");
    }

    const std::size_t m = X.shape(1);
    if (m == 0) {
        shape_error("backward_prop", "X is " + shape_of(X) + ": the 1/m average needs at least one example");
    }
    const T one_over_m = T(1) / T(m);  // the notebook's (1/m)
    Gradients<T> pass_gradients;
    pass_gradients.dW.resize(layers);
    pass_gradients.db.resize(layers);

    // Output layer, softmax with cross-entropy: dL_dZ3 = A3 - Y.
    Matrix<T> dL_dZ = A_out - Y;
    for (std::size_t l = layers; l-- > 0;) {
        // dZ3_dW3 = A2.T (the first layer's is X.T): dL_dW3 = (1/m) * dL_dZ3 · A2.T
        const Matrix<T>& A_prev = l == 0 ? X : A[l - 1];
        pass_gradients.dW[l] = one_over_m * xt::linalg::dot(dL_dZ, xt::transpose(A_prev));
        // dZ3_db3 = 1: dL_db3 = (1/m) * Σ over examples of dL_dZ3
        pass_gradients.db[l] = one_over_m * sum_over_examples(dL_dZ);
        if (l == 0) break;
        // dZ3_dA2 = W3.T: dL_dA2 = W3.T · dL_dZ3 ("switched positions")
        const Matrix<T> dL_dA_prev = xt::linalg::dot(xt::transpose(parameters.W[l]), dL_dZ);
        // dA2_dZ2 = relu_derivative(Z2): dL_dZ2 = dL_dA2 * dA2_dZ2
        dL_dZ = dL_dA_prev * relu_derivative(Z[l - 1]);
    }
    return pass_gradients;
}

template <class T>
Parameters<T> update_parameters(const Parameters<T>& parameters, const Gradients<T>& pass_gradients,
                                T learning_rate) {
    // A NaN or infinite rate made every weight NaN without a word.
    if (!std::isfinite(learning_rate)) {
        throw autodiff::Error("update_parameters: learning_rate is " + std::to_string(double(learning_rate)) +
                              "; it must be a finite number");
    }
    const std::size_t layers = parameters.W.size();
    if (pass_gradients.dW.size() != layers || pass_gradients.db.size() != layers) {
        shape_error("update_parameters", "gradients hold " + std::to_string(pass_gradients.dW.size()) +
                                             " dW and " + std::to_string(pass_gradients.db.size()) +
                                             " db for " + std::to_string(layers) + " layers");
    }
    Parameters<T> updated_params;
    for (std::size_t l = 0; l < layers; ++l) {
        const Matrix<T>& W = parameters.W[l];
        const Matrix<T>& b = parameters.b[l];
        const Matrix<T>& dW = pass_gradients.dW[l];
        const Matrix<T>& db = pass_gradients.db[l];
        if (dW.shape() != W.shape() || db.shape() != b.shape()) {
            shape_error("update_parameters", "dL_d" + name("W", l) + " is " + shape_of(dW) + " and dL_d" +
                                                 name("b", l) + " is " + shape_of(db) + " but " +
                                                 name("W", l) + " is " + shape_of(W) + " and " +
                                                 name("b", l) + " is " + shape_of(b));
        }
        // W1 = W1 - learning_rate * dL_dW1, b1 = b1 - learning_rate * dL_db1, ...
        updated_params.W.push_back(W - learning_rate * dW);
        updated_params.b.push_back(b - learning_rate * db);
    }
    return updated_params;
}

template <class T>
Matrix<T> one_hot(const std::vector<std::int64_t>& labels, std::size_t classes) {
    // classes comes from the caller: 2^62 classes wrapped the size around to nothing.
    Matrix<T> Y = allocate_matrix<T>("one_hot", classes, labels.size());
    Y.fill(T(0));
    for (std::size_t example = 0; example < labels.size(); ++example) {
        const std::int64_t label = labels[example];
        if (label < 0 || static_cast<std::size_t>(label) >= classes) {
            throw autodiff::Error("one_hot: label " + std::to_string(label) + " of example " +
                                  std::to_string(example) + " is outside [0, " +
                                  std::to_string(classes) + ")");
        }
        Y(static_cast<std::size_t>(label), example) = T(1);
    }
    return Y;
}

template <class T>
NotebookExecution<T> notebook_execution() {
    const std::size_t features = notebook_layer_sizes.front();
    const std::size_t classes = notebook_layer_sizes.back();
    const std::size_t examples = 10;

    NumpyRandom rng(1);                                            // np.random.seed(1)
    Matrix<T> X = xt::cast<T>(rng.rand(features, examples));       // np.random.rand(5, 10)
    // Y = np.eye(4)[np.random.choice(4, 10)].T
    Matrix<T> Y = one_hot<T>(rng.choice(static_cast<std::int64_t>(classes), examples), classes);
    rng.seed(1);  // init_parameters() starts with np.random.seed(1)
    Parameters<T> parameters = init_parameters<T>(rng, notebook_layer_sizes);
    return {std::move(X), std::move(Y), std::move(parameters)};
}

// float for the engine's single-precision path, double to compare with NumPy bit for bit.
#define TAPEGRAD_NOTEBOOK_INSTANTIATE(T)                                                               \
    template Matrix<T> relu<T>(const Matrix<T>&);                                                      \
    template Matrix<T> softmax<T>(const Matrix<T>&);                                                   \
    template Matrix<T> relu_derivative<T>(const Matrix<T>&);                                           \
    template Parameters<T> init_parameters<T>(NumpyRandom&, const std::vector<std::size_t>&);          \
    template Activations<T> forward_prop<T>(const Matrix<T>&, const Parameters<T>&);                   \
    template Gradients<T> backward_prop<T>(const Matrix<T>&, const Matrix<T>&, const Parameters<T>&,   \
                                           const Activations<T>&);                                    \
    template Parameters<T> update_parameters<T>(const Parameters<T>&, const Gradients<T>&, T);         \
    template Matrix<T> one_hot<T>(const std::vector<std::int64_t>&, std::size_t);                      \
    template NotebookExecution<T> notebook_execution<T>();

TAPEGRAD_NOTEBOOK_INSTANTIATE(float)
TAPEGRAD_NOTEBOOK_INSTANTIATE(double)
#undef TAPEGRAD_NOTEBOOK_INSTANTIATE

}  // namespace nn::notebook
