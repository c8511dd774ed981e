#pragma once
/// @file
/// Putting a finished directory in place of another in one step, and cleaning up after a
/// process that was killed while it prepared one. Used by checkpoint saving (checkpoint.cpp).
#include <filesystem>
#include <functional>
#include <vector>

namespace nn {

/// Puts the complete directory `fresh` at `dir` (which may not exist): one atomic exchange
/// where the file system supports it (renameat2 RENAME_EXCHANGE), else three renames that park
/// the old directory at ".<dir name>.previous-<pid>-XXXXXX" beside it (a name only this
/// function makes; see parked_dirs_beside for what a kill between them leaves).
/// Afterwards `fresh` holds whatever was at `dir` before (or nothing), for the caller to clear.
/// Throws nn::IoError naming both paths and the system's reason.
void exchange_directories(const std::filesystem::path& fresh, const std::filesystem::path& dir);

/// A directory in which exchange_directories' fallback parked the old `dir`.
struct ParkedDir {
    std::filesystem::path path;
    bool owner_gone = false;  ///< the process that parked it has exited (it was killed mid-exchange)
};

/// The directories ".<dir name>.previous-<pid>-XXXXXX" beside `dir`. A process killed between
/// the fallback's renames leaves one: with no `dir` (the old one is parked), or with the new
/// `dir` in place (the old one is parked and was to be removed).
std::vector<ParkedDir> parked_dirs_beside(const std::filesystem::path& dir);

/// Removes the temporary directories ".<dir name>.tmp-<pid>-XXXXXX" beside `dir` whose process
/// is gone (a save that was killed), if `only_ours` says everything in one is what such a save
/// writes; anything else, and the directories of live processes, are left alone.
void remove_stale_temp_dirs(const std::filesystem::path& dir,
                            const std::function<bool(const std::filesystem::path&)>& only_ours);

}  // namespace nn
