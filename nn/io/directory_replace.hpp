#pragma once
/// @file
/// Putting a finished directory in place of another in one step, and cleaning up after a
/// process that was killed while it prepared one. Used by checkpoint saving (checkpoint.cpp).
#include <filesystem>
#include <functional>

namespace nn {

/// Puts the complete directory `fresh` at `dir` (which may not exist): one atomic exchange
/// where the file system supports it (renameat2 RENAME_EXCHANGE), else two renames via
/// "<dir>.previous", which load_checkpoint falls back to if a crash strikes between them.
/// Afterwards `fresh` holds whatever was at `dir` before (or nothing), for the caller to clear.
/// Throws std::runtime_error naming both paths and the system's reason.
void exchange_directories(const std::filesystem::path& fresh, const std::filesystem::path& dir);

/// "<dir>.previous", the fallback's parking place.
std::filesystem::path previous_of(const std::filesystem::path& dir);

/// Removes the temporary directories ".<dir name>.tmp-<pid>-XXXXXX" beside `dir` whose process
/// is gone (a save that was killed), if `only_ours` says everything in one is what such a save
/// writes; anything else, and the directories of live processes, are left alone.
void remove_stale_temp_dirs(const std::filesystem::path& dir,
                            const std::function<bool(const std::filesystem::path&)>& only_ours);

}  // namespace nn
