#pragma once
/// @file
/// nn's exception types. Like everything tapegrad throws for bad input, both are
/// autodiff::Errors, so `catch (const autodiff::Error&)` catches them all; a mistake in a
/// call (an unknown option, mismatched shapes, an index out of range) is an autodiff::Error
/// itself.
#include "autodiff/error.hpp"

namespace nn {

/// Bad input data: files that are missing, malformed, truncated or corrupted, or data
/// sets that do not hold together. Its message always names the file or data set at fault.
struct DataError : autodiff::Error {
    using autodiff::Error::Error;
};

/// The operating system refused a write, rename, fsync or directory creation, or a path
/// given for output cannot be used. Its message names the path and the system's reason.
/// The engine's type (its atomic file writer throws it, for nn and for save_dot alike).
using IoError = autodiff::IoError;

}  // namespace nn
