#include "nn/io/directory_replace.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>  // AT_FDCWD
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28, _GNU_SOURCE)
#include <stdlib.h>  // mkdtemp
#include <unistd.h>

#include "nn/data_error.hpp"
#include "nn/io/atomic_file.hpp"

namespace nn {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void rename_failed(const fs::path& from, const fs::path& to) {
    throw IoError("save_checkpoint: cannot rename '" + from.string() + "' to '" + to.string() +
                  "': " + std::strerror(errno));
}

// The names of the directories a save makes beside `dir`: "<prefix><pid>-XXXXXX".
std::string temp_prefix(const fs::path& dir) { return "." + dir.filename().string() + ".tmp-"; }
std::string parked_prefix(const fs::path& dir) { return "." + dir.filename().string() + ".previous-"; }

// The pid in "<prefix><pid>-XXXXXX", or 0 if `entry` is not such a name.
pid_t owner_in_name(const std::string& entry, const std::string& prefix) {
    if (entry.compare(0, prefix.size(), prefix) != 0) return 0;
    const std::string rest = entry.substr(prefix.size());
    const auto dash = rest.find('-');
    // At most 9 digits: a pid fits, and a longer number in a user's name cannot overflow stol.
    if (dash == 0 || dash > 9 || dash == std::string::npos || rest.size() - dash - 1 != 6 ||
        rest.find_first_not_of("0123456789") != dash) {
        return 0;
    }
    return static_cast<pid_t>(std::stol(rest.substr(0, dash)));
}

bool process_is_gone(pid_t pid) {
    return pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
}

struct OwnedDir {
    fs::path path;
    pid_t owner;
};

// The directories beside `dir` named "<prefix><pid>-XXXXXX" (symlinks and files are not).
std::vector<OwnedDir> owned_dirs_beside(const fs::path& dir, const std::string& prefix) {
    std::vector<OwnedDir> found;
    std::error_code error;
    const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
    for (const auto& entry : fs::directory_iterator(parent, error)) {
        const pid_t owner = owner_in_name(entry.path().filename().string(), prefix);
        std::error_code ignored;
        if (owner > 0 && fs::is_directory(fs::symlink_status(entry.path(), ignored))) found.push_back({entry.path(), owner});
    }
    return found;
}

// A name for the old `dir` that no user would choose and no other save picks: mkdtemp's,
// whose directory is removed again, so that the rename does not rely on replacing an empty
// directory (some FUSE file systems refuse that).
fs::path parking_name(const fs::path& dir) {
    std::string name = (dir.parent_path() / (parked_prefix(dir) + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (::mkdtemp(name.data()) == nullptr || ::rmdir(name.c_str()) != 0) {
        throw IoError("save_checkpoint: cannot create a directory beside '" + dir.string() + "': " + std::strerror(errno));
    }
    return fs::path(name);
}

// Without RENAME_EXCHANGE: park the old `dir`, move `fresh` in, move the parked one to `fresh`.
void exchange_by_renames(const fs::path& fresh, const fs::path& dir) {
    const fs::path parked = parking_name(dir);
    if (::rename(dir.c_str(), parked.c_str()) != 0) rename_failed(dir, parked);
    if (::rename(fresh.c_str(), dir.c_str()) != 0) {
        const int error = errno;
        ::rename(parked.c_str(), dir.c_str());  // the old checkpoint back where it was
        errno = error;
        rename_failed(fresh, dir);
    }
    fsync_path(dir.parent_path());
    if (::rename(parked.c_str(), fresh.c_str()) != 0) rename_failed(parked, fresh);
}

}  // namespace

void exchange_directories(const fs::path& fresh, const fs::path& dir) {
    if (!fs::exists(fs::symlink_status(dir))) {
        if (::rename(fresh.c_str(), dir.c_str()) != 0) rename_failed(fresh, dir);
        return;
    }
    if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) return;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) rename_failed(fresh, dir);
    exchange_by_renames(fresh, dir);
}

std::vector<ParkedDir> parked_dirs_beside(const fs::path& dir) {
    std::vector<ParkedDir> parked;
    for (const OwnedDir& d : owned_dirs_beside(dir, parked_prefix(dir))) parked.push_back({d.path, process_is_gone(d.owner)});
    return parked;
}

void remove_stale_temp_dirs(const fs::path& dir, const std::function<bool(const fs::path&)>& only_ours) {
    for (const OwnedDir& d : owned_dirs_beside(dir, temp_prefix(dir))) {
        if (!process_is_gone(d.owner) || !only_ours(d.path)) continue;  // its save may still be running
        std::error_code ignored;
        fs::remove_all(d.path, ignored);
    }
}

}  // namespace nn
