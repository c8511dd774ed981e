#!/usr/bin/python3
"""Regenerates the NumPy fixtures in this folder: run `/usr/bin/python3 generate.py`.

Two kinds of files:
  * the notebook's one training step (seed/000_9df856a9e0b77cb9.txt, cell "Execution"), with the
    notebook's own functions (notebook.py, kept as the notebook wrote them); the C++ port in
    nn/notebook_backprop.* is tested against these;
  * streams of NumPy's legacy np.random (RandomState / MT19937) for nn::NumpyRandom, one
    RandomState per seed, drawn in the order listed in RNG_STREAM so later pieces also check
    that earlier ones consumed exactly as many words as NumPy did.

Only numpy is used. File names are what the tests load; changing them means changing the tests.
"""
import os

import numpy as np

from notebook import backward_prop, execution, forward_prop, update_parameters

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- fixtures --------------------------------------------------------------------------------
PARAMETER_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def save(name, array):
    np.save(os.path.join(HERE, name + ".npy"), np.ascontiguousarray(array))


def notebook_fixtures():
    # The notebook's "Execution" cell (notebook.execution draws X, Y and the parameters).
    X, Y, parameters = execution()
    learning_rate = 0.01
    A3, forwardpass_predictions = forward_prop(X, parameters)
    gradients = backward_prop(X, Y, parameters, forwardpass_predictions)
    updated_parameters = update_parameters(parameters, gradients, learning_rate)

    save("X", X)
    save("Y", Y)
    save("A3", A3)
    for name, p, g, u in zip(PARAMETER_NAMES, parameters, gradients, updated_parameters):
        save(name, p)
        save("dL_d" + name, g)
        save(name + "_updated", u)


# Each entry: (file suffix, draw). Order matters: they share one RandomState per seed.
RNG_STREAM = (
    ("rand_1000", lambda r: r.rand(1000)),
    ("randn_1001", lambda r: r.randn(1001)),         # odd: leaves a cached gauss behind
    ("randn_3", lambda r: r.randn(3)),               # starts with that cached value
    ("choice_4_10", lambda r: r.choice(4, 10)),
    ("choice_1000_50", lambda r: r.choice(1000, 50)),
    ("choice_7_13", lambda r: r.choice(7, 13)),
    ("choice_1_5", lambda r: r.choice(1, 5)),        # one-value range: draws nothing
    ("randint_wide_5", lambda r: r.randint(-5, 2**40, 5)),  # 64-bit masked path
    ("permutation_10", lambda r: r.permutation(10)),
    ("permutation_1000", lambda r: r.permutation(1000)),
    ("rand_tail_3", lambda r: r.rand(3)),            # still in step after all of the above
)
RNG_SEEDS = (0, 1, 42, 2**32 - 1)


def rng_fixtures():
    for seed in RNG_SEEDS:
        r = np.random.RandomState(seed)
        for suffix, draw in RNG_STREAM:
            save("rng_seed%d_%s" % (seed, suffix), draw(r))


if __name__ == "__main__":
    notebook_fixtures()
    rng_fixtures()
    print("numpy", np.__version__, "fixtures written to", HERE)
