#pragma once
/// @file
/// Writing files so that a crash, a full disk or an exception never destroys what was
/// saved before: the new content goes to a temporary file in the same directory, is
/// flushed to disk, and only then renamed over the target (rename is atomic on POSIX).
/// The engine's own (save_dot writes through it); nn offers the same functions under its
/// names (nn/io/atomic_file.hpp) for checkpoints and the examples' outputs.
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

#include <sys/types.h>

namespace autodiff {

/// Calls `write` on a stream to a fresh temporary file beside `path`, then flushes,
/// fsyncs, renames it over `path` and fsyncs the directory. The file gets the mode a plain
/// open() would give it (0666 less the umask), not mkstemp's 0600. If `write` throws or any step
/// fails, the temporary file is removed, `path` is left exactly as it was, and a
/// autodiff::IoError naming `path` is thrown (the exception from `write` propagates as is).
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

/// The same, replacing only a file `may_replace` accepts: the new file is swapped with what
/// stands at `path` in one step (renameat2's RENAME_EXCHANGE), `may_replace` is asked about
/// the file it displaced, and a file it refuses is swapped back, untouched, and autodiff::IoError
/// thrown. So a file that appeared at `path` after any earlier check is never lost. Where
/// nothing stands, the new file is put there only if nothing appeared meanwhile. A file
/// system without the exchange (EINVAL) gets the check then a rename.
void write_file_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write,
                           const std::function<bool(const std::filesystem::path& displaced)>& may_replace);

/// The building blocks, shared with nn's checkpoint saving. All throw autodiff::IoError
/// naming the path and the system's reason.
void fsync_path(const std::filesystem::path& path);  ///< a file or a directory
/// A new empty directory beside `target` (same file system, so a rename can move it there),
/// named ".<target name>.tmp-<pid>-XXXXXX" so that a later save can tell one left by a killed
/// process, with the permissions the user's umask gives a new directory.
std::filesystem::path make_temp_dir_beside(const std::filesystem::path& target);
/// The process's file mode creation mask, read without changing it (from /proc where it can).
mode_t current_umask();

}  // namespace autodiff
