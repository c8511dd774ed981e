#include "nn/io/directory_replace.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>  // AT_FDCWD
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28, _GNU_SOURCE)
#include <unistd.h>

#include "nn/io/atomic_file.hpp"

namespace nn {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void rename_failed(const fs::path& from, const fs::path& to) {
    throw std::runtime_error("save_checkpoint: cannot rename '" + from.string() + "' to '" + to.string() +
                             "': " + std::strerror(errno));
}

// The pid in ".<name>.tmp-<pid>-XXXXXX", or 0 if `entry` is not such a name for `name`.
pid_t temp_dir_owner(const std::string& entry, const std::string& name) {
    const std::string prefix = "." + name + ".tmp-";
    if (entry.compare(0, prefix.size(), prefix) != 0) return 0;
    const std::string rest = entry.substr(prefix.size());
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.size() - dash - 1 != 6 ||
        rest.find_first_not_of("0123456789") != dash) {
        return 0;
    }
    return static_cast<pid_t>(std::stol(rest.substr(0, dash)));
}

}  // namespace

fs::path previous_of(const fs::path& dir) {
    return fs::path(dir.string() + ".previous");
}

void exchange_directories(const fs::path& fresh, const fs::path& dir) {
    if (!fs::exists(fs::symlink_status(dir))) {
        if (::rename(fresh.c_str(), dir.c_str()) != 0) rename_failed(fresh, dir);
        return;
    }
    if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) return;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) rename_failed(fresh, dir);
    const fs::path previous = previous_of(dir);
    if (::rename(dir.c_str(), previous.c_str()) != 0) rename_failed(dir, previous);
    if (::rename(fresh.c_str(), dir.c_str()) != 0) rename_failed(fresh, dir);
    fsync_path(dir.parent_path());
    if (::rename(previous.c_str(), fresh.c_str()) != 0) rename_failed(previous, fresh);
}

void remove_stale_temp_dirs(const fs::path& dir, const std::function<bool(const fs::path&)>& only_ours) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir.parent_path(), error)) {
        const pid_t owner = temp_dir_owner(entry.path().filename().string(), dir.filename().string());
        if (owner <= 0 || owner == ::getpid()) continue;
        if (::kill(owner, 0) == 0 || errno != ESRCH) continue;  // its save may still be running
        std::error_code ignored;
        if (!fs::is_directory(fs::symlink_status(entry.path(), ignored)) || !only_ours(entry.path())) continue;
        fs::remove_all(entry.path(), ignored);
    }
}

}  // namespace nn
