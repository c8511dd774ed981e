#pragma once
/// @file
/// Writing files so that a crash, a full disk or an exception never destroys what was saved
/// before: the engine's functions (autodiff/atomic_file.hpp, where they are described), under
/// nn's names. One implementation: the engine needs it for save_dot and knows nothing of nn.
#include "autodiff/atomic_file.hpp"

namespace nn {

using autodiff::current_umask;
using autodiff::fsync_path;
using autodiff::make_temp_dir_beside;
using autodiff::write_file_atomically;

}  // namespace nn
