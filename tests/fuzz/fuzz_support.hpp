#pragma once
// Shared by the fuzz targets: a scratch directory per process (on tmpfs when there is one,
// so the loaders' file I/O and fsyncs stay cheap) and a check that aborts with a message,
// which libFuzzer reports as a crash with the input that caused it.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace fuzz {

inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        namespace fs = std::filesystem;
        const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
        fs::path d = base / ("tapegrad-fuzz-" + std::to_string(getpid()));
        fs::create_directories(d);
        std::atexit([] {
            std::error_code ignored;
            fs::remove_all(scratch_dir(), ignored);
        });
        return d;
    }();
    return dir;
}

inline std::string write_file(const std::string& name, const void* data, std::size_t size) {
    const auto path = scratch_dir() / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path.string();
}

[[noreturn]] inline void check_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, file, line);
    std::abort();
}

}  // namespace fuzz

#define FUZZ_CHECK(cond) \
    do {                 \
        if (!(cond)) ::fuzz::check_failed(#cond, __FILE__, __LINE__); \
    } while (0)

// `expr` must throw an exception of type `type`; any other exception propagates (a finding).
#define FUZZ_CHECK_THROWS(expr, type)                                        \
    do {                                                                     \
        bool thrown = false;                                                 \
        try {                                                                \
            (void)(expr);                                                    \
        } catch (const type&) {                                              \
            thrown = true;                                                   \
        }                                                                    \
        if (!thrown) ::fuzz::check_failed(#expr " did not throw " #type, __FILE__, __LINE__); \
    } while (0)
