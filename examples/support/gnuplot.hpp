#pragma once
// Runs gnuplot without a shell: an argument vector (posix_spawnp), the script on its standard
// input, the image from its standard output. No file name of the user's ever appears in the
// script, so no character in one (a quote, a newline, "$(...)") can end a string or run
// anything; the caller writes the image where it wants (atomically).

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

extern char** environ;

namespace example {

namespace detail {

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using TempFile = std::unique_ptr<std::FILE, FileCloser>;

inline TempFile temp_file() {
    TempFile f(std::tmpfile());  // already unlinked: nothing to clean up, whatever happens
    if (!f) throw std::runtime_error(std::string("cannot create a temporary file: ") + std::strerror(errno));
    return f;
}

inline std::string read_all(std::FILE* f) {
    std::rewind(f);
    std::string text;
    char buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    return text;
}

}  // namespace detail

// The image gnuplot draws from `script` (which must not `set output`). Throws
// std::runtime_error saying what failed: gnuplot not found, or its exit status and message.
inline std::string run_gnuplot(const std::string& script) {
    detail::TempFile in = detail::temp_file(), out = detail::temp_file(), err = detail::temp_file();
    if (std::fwrite(script.data(), 1, script.size(), in.get()) != script.size() || std::fflush(in.get()) != 0)
        throw std::runtime_error("cannot write the gnuplot script to a temporary file");
    std::rewind(in.get());

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fileno(in.get()), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fileno(out.get()), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fileno(err.get()), STDERR_FILENO);
    char program[] = "gnuplot";
    char* argv[] = {program, nullptr};
    pid_t pid = 0;
    const int spawned = posix_spawnp(&pid, program, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        throw std::runtime_error(std::string("cannot run gnuplot: ") + std::strerror(spawned) +
                                 (spawned == ENOENT ? " (gnuplot not found on PATH: install it for plots)" : ""));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw std::runtime_error(std::string("waiting for gnuplot: ") + std::strerror(errno));
    }
    std::string message = detail::read_all(err.get());
    if (const auto end = message.find_last_not_of(" \n"); end != std::string::npos) message.erase(end + 1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error("gnuplot " +
                                 (WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                                    : "was killed by signal " + std::to_string(WTERMSIG(status))) +
                                 (message.empty() ? "" : ": " + message));
    }
    std::string image = detail::read_all(out.get());
    if (image.empty()) throw std::runtime_error("gnuplot drew nothing" + (message.empty() ? "" : ": " + message));
    return image;
}

}  // namespace example
