#pragma once
/// @file
/// autodiff::Error is the base of everything tapegrad throws for bad input, engine and nn
/// alike (nn::DataError and nn::TrainingDiverged derive from it; nn::IoError is IoError). The
/// engine's own messages start with the op's name.

#include <stdexcept>
#include <string>

namespace autodiff {

/// The one base class to catch: a mistake in a call, bad data, a refusal of the system.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Thrown by anomaly detection: a NaN or Inf appeared in a forward value or a backward gradient.
class AnomalyError : public Error {
public:
    using Error::Error;
};

/// The operating system refused a write, rename, fsync or directory creation, or a path
/// given for output cannot be used (autodiff/atomic_file.hpp). Its message names the path
/// and the system's reason.
class IoError : public Error {
public:
    using Error::Error;
};

}  // namespace autodiff
