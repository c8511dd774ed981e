#pragma once
/// @file
/// The one exception type for bad input data: files that are missing, malformed,
/// truncated or corrupted. Callers that want to tell "your data is wrong" apart from
/// programming errors catch this; its message always names the file at fault.
#include <stdexcept>

namespace nn {

struct DataError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace nn
