#pragma once
// The on-disk state a save killed between the fallback exchange's renames leaves (file systems
// without RENAME_EXCHANGE), made by hand: the old checkpoint parked under the name only
// tapegrad makes, ".<name>.previous-<pid>-XXXXXX", of a process that is gone.
#include <filesystem>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

// The pid of a child that has exited and been reaped: no process has it (until it is reused).
inline pid_t pid_of_exited_process() {
    const pid_t child = fork();
    if (child == 0) _exit(0);
    int status = 0;
    waitpid(child, &status, 0);
    return child;
}

// Where process `owner` parks the old checkpoint of `dir`.
inline std::filesystem::path parked_path(const std::filesystem::path& dir, pid_t owner) {
    return dir.parent_path() / ("." + dir.filename().string() + ".previous-" + std::to_string(owner) + "-a1B2c3");
}

}  // namespace test_support
