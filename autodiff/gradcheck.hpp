#pragma once
/// @file
/// Compares the tape's gradients of any function of handles with central finite
/// differences. Public, so that whoever writes a new op checks it the same way.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

namespace autodiff {

template <class T>
using TapeFunction = std::function<Var<T>(Tape<T>&, const std::vector<Var<T>>&)>;

/// Unset step and tolerance take the defaults of the element type (GradcheckDefaults).
struct GradcheckOptions {
    std::optional<double> step;       ///< finite-difference step, relative: x +- step * max(1, |x|)
    std::optional<double> tolerance;  ///< passes when the worst error is at most this
    std::uint64_t seed = 12345;       ///< for the random projection of a non-scalar output
};

/// Defaults for which a correct function passes. In double, central differences with a
/// step of 1e-6 are good to about 1e-9. In float, rounding the function's value (about 6e-8
/// relative) over a step of h costs 6e-8 / h, and truncation costs h^2: h = 1e-2 keeps
/// both near 1e-5 for inputs of order 1, and the tolerance leaves room for sums of many
/// outputs (the projection adds them all) and for curvature up to ~50.
template <class T>
struct GradcheckDefaults;
template <>
struct GradcheckDefaults<double> {
    static constexpr double step = 1e-6, tolerance = 1e-6;
};
template <>
struct GradcheckDefaults<float> {
    static constexpr double step = 1e-2, tolerance = 1e-2;
};

/// error = |analytic - numeric| / max(1, |analytic|, |numeric|): relative for gradients
/// larger than 1, absolute below, so entries near zero do not turn noise into failures.
struct GradcheckResult {
    double worst_error = 0;
    std::size_t input = 0, row = 0, col = 0;  ///< where the worst error is
    double analytic = 0, numeric = 0;          ///< the two values there
    bool passed = true;
    std::string summary() const;
};

/// f is called with one leaf per input. A non-scalar output y is reduced to sum(R * y)
/// with a fixed random R, so every output element takes part. Prefer T = double: its
/// check is a thousand times finer; float works with its own defaults.
template <class T>
GradcheckResult gradcheck(const TapeFunction<T>& f, const std::vector<Matrix<T>>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace autodiff
