#pragma once
/// @file
/// Every failure the engine reports is an autodiff::Error whose message starts with the op's name.

#include <stdexcept>
#include <string>

namespace autodiff {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Thrown by anomaly detection: a NaN or Inf appeared in a forward value or a backward gradient.
class AnomalyError : public Error {
public:
    using Error::Error;
};

}  // namespace autodiff
