#pragma once
/// @file
/// Compares the tape's gradients of any function of handles with central finite
/// differences. Public, so that whoever writes a new op checks it the same way.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

namespace autodiff {

template <class T>
using TapeFunction = std::function<Var<T>(Tape<T>&, const std::vector<Var<T>>&)>;

struct GradcheckOptions {
    double step = 1e-6;          ///< finite-difference step
    double tolerance = 1e-6;     ///< passes when the worst error is at most this
    std::uint64_t seed = 12345;  ///< for the random projection of a non-scalar output
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
/// with a fixed random R, so every output element takes part. Use T = double.
template <class T>
GradcheckResult gradcheck(const TapeFunction<T>& f, const std::vector<Matrix<T>>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace autodiff
