#!/usr/bin/python3
"""NumPy reads what tapegrad saves, and agrees with what tapegrad predicts.

Runs the C++ program given as argv[1] (interop_write_predictions) into a temporary
folder, loads the weights it saved with numpy.load, runs the notebook's own forward_prop
over them, and compares with tapegrad's predictions: max abs difference <= 1e-12.

Exits 77 (ctest's SKIP_RETURN_CODE) when numpy is not installed.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)

TOLERANCE = 1e-12


# The notebook's own forward_prop, from the one copy of its code.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "notebook"))
from notebook import forward_prop  # noqa: E402


def main():
    program = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="tapegrad-interop-") as out:
        subprocess.run([program, out], check=True)
        model = os.path.join(out, "model")
        with open(os.path.join(model, "manifest.json")) as f:
            manifest = json.load(f)
        names = ("W1", "b1", "W2", "b2", "W3", "b3")
        parameters = tuple(np.load(os.path.join(model, name + ".npy")) for name in names)
        for name, p in zip(names, parameters):
            assert p.dtype == np.float64, f"{name}.npy is {p.dtype}, not float64"
        shapes = [p.shape for p in parameters]
        assert shapes == [(10, 5), (10, 1), (10, 10), (10, 1), (4, 10), (4, 1)], shapes
        X = np.load(os.path.join(out, "X.npy"))
        expected = np.load(os.path.join(out, "predictions.npy"))

    A3, _ = forward_prop(X, parameters)
    assert A3.shape == expected.shape, (A3.shape, expected.shape)
    worst = float(np.max(np.abs(A3 - expected)))
    agree = int(np.sum(np.argmax(A3, axis=0) == np.argmax(expected, axis=0)))
    print(f"forward_prop over {X.shape[1]} examples: max |numpy - tapegrad| = {worst:.3g}, "
          f"argmax agrees on {agree}/{X.shape[1]}")
    if not worst <= TOLERANCE:
        print(f"FAILED: more than {TOLERANCE}")
        return 1
    # The weights are trained, not the initial 0.01-scale ones: predictions are not uniform.
    if not np.max(expected) > 0.5:
        print("FAILED: predictions look untrained")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
