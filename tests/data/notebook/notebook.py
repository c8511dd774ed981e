"""The seed notebook's code (seed/000_9df856a9e0b77cb9.txt), as the notebook wrote it.

The one copy every NumPy script of the project imports: the fixture generators under
tests/data, the interop check and the NumPy benchmark peer. Only numpy is used.
"""
import numpy as np


def relu(z):
    return np.maximum(0, z)


def softmax(Z):
    z_exp = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    softmax = z_exp / np.sum(z_exp, axis=0, keepdims=True)
    return softmax


def init_parameters():
    np.random.seed(1)
    W1 = np.random.randn(10, 5) * 0.01
    b1 = np.random.randn(10, 1) * 0.01
    W2 = np.random.randn(10, 10) * 0.01
    b2 = np.random.randn(10, 1) * 0.01
    W3 = np.random.randn(4, 10) * 0.01
    b3 = np.random.randn(4, 1) * 0.01
    return (W1, b1, W2, b2, W3, b3)


def forward_prop(X, parameters):
    W1, b1, W2, b2, W3, b3 = parameters
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = softmax(Z3)
    return A3, (Z1, A1, Z2, A2, Z3, A3)


def relu_derivative(Z):
    return Z > 0


def backward_prop(X, Y, parameters, forwardpass_activations):
    m = X.shape[1]
    W1, b1, W2, b2, W3, b3 = parameters
    Z1, A1, Z2, A2, Z3, A3 = forwardpass_activations

    dL_dZ3 = A3 - Y
    dL_dW3 = (1 / m) * np.dot(dL_dZ3, A2.T)
    dL_db3 = (1 / m) * np.sum(dL_dZ3, axis=1, keepdims=True)

    dL_dA2 = np.dot(W3.T, dL_dZ3)
    dL_dZ2 = dL_dA2 * relu_derivative(Z2)
    dL_dW2 = (1 / m) * np.dot(dL_dZ2, A1.T)
    dL_db2 = (1 / m) * np.sum(dL_dZ2, axis=1, keepdims=True)

    dL_dA1 = np.dot(W2.T, dL_dZ2)
    dL_dZ1 = dL_dA1 * relu_derivative(Z1)
    dL_dW1 = (1 / m) * np.dot(dL_dZ1, X.T)
    dL_db1 = (1 / m) * np.sum(dL_dZ1, axis=1, keepdims=True)

    return (dL_dW1, dL_db1, dL_dW2, dL_db2, dL_dW3, dL_db3)


def update_parameters(parameters, pass_gradients, learning_rate):
    return tuple(p - learning_rate * g for p, g in zip(parameters, pass_gradients))


def execution():
    """The notebook's "Execution" cell up to its first forward pass: X, Y, parameters."""
    np.random.seed(1)
    X = np.random.rand(5, 10)  # 5 features and 10 training examples
    Y = np.eye(4)[np.random.choice(4, 10)].T  # One-hot encoded labels for 4 classes
    parameters = init_parameters()  # reseeds with 1
    return X, Y, parameters
