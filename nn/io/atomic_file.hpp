#pragma once
/// @file
/// Writing files so that a crash, a full disk or an exception never destroys what was
/// saved before: the new content goes to a temporary file in the same directory, is
/// flushed to disk, and only then renamed over the target (rename is atomic on POSIX).
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

#include <sys/types.h>

namespace nn {

/// Calls `write` on a stream to a fresh temporary file beside `path`, then flushes,
/// fsyncs, renames it over `path` and fsyncs the directory. The file gets the mode a plain
/// open() would give it (0666 less the umask), not mkstemp's 0600. If `write` throws or any step
/// fails, the temporary file is removed, `path` is left exactly as it was, and a
/// std::runtime_error naming `path` is thrown (the exception from `write` propagates as is).
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

/// The building blocks, shared with checkpoint saving. All throw std::runtime_error
/// naming the path and the system's reason.
void fsync_path(const std::filesystem::path& path);  ///< a file or a directory
/// A new empty directory beside `target` (same file system, so a rename can move it there),
/// named ".<target name>.tmp-<pid>-XXXXXX" so that a later save can tell one left by a killed
/// process, with the permissions the user's umask gives a new directory.
std::filesystem::path make_temp_dir_beside(const std::filesystem::path& target);
/// The process's file mode creation mask, read without changing it (from /proc where it can).
mode_t current_umask();

}  // namespace nn
