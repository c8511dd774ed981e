#pragma once
// Output paths (--save, --metrics, --plot, --dot) checked before any work is done, so a typo
// fails in a second instead of after the first epoch: each error names the option, the path
// and the system's reason.

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "nn/io/checkpoint.hpp"
#include "own_outputs.hpp"

namespace example {

// Throws unless a file can be created at `path` (an existing directory would not do): its
// directory must exist and take a new file, which is checked by creating and removing one.
inline void check_output_file(const std::string& path, const std::string& option) {
    namespace fs = std::filesystem;
    if (path.empty()) return;
    const fs::path p(path);
    std::error_code ec;
    if (fs::is_directory(p, ec)) throw std::runtime_error(option + " " + path + ": is a directory, not a file name");
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    // Named as nn::write_file_atomically names its temporary file, so that a name too long
    // for that one is refused now rather than after the first epoch.
    std::string probe = (dir / ("." + p.filename().string() + ".tmp-XXXXXX")).string();
    const int fd = ::mkstemp(probe.data());
    if (fd < 0) throw std::runtime_error(option + " " + path + ": cannot create a file there: " + std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
}

// Throws unless `path` is a fine place for checkpoints: save_checkpoint may replace what is
// there (nn::check_checkpoint_target), and its nearest existing ancestor is a directory we can
// write to.
inline void check_checkpoint_dir(const std::string& path, const std::string& option) {
    namespace fs = std::filesystem;
    if (path.empty()) return;
    nn::check_checkpoint_target(path);
    fs::path ancestor = nn::checkpoint_directory(path);  // where the save will go, "link/.." as the kernel takes it
    do {
        ancestor = ancestor.has_parent_path() ? ancestor.parent_path() : fs::path(".");
    } while (!fs::exists(ancestor) && ancestor != ancestor.parent_path());
    if (!fs::is_directory(ancestor) || ::access(ancestor.c_str(), W_OK) != 0) {
        throw std::runtime_error(option + " " + path + ": cannot create it in " + ancestor.string() + ": " +
                                 std::strerror(fs::is_directory(ancestor) ? errno : ENOTDIR));
    }
}

// Throws if `path` exists but is not a regular file. For outputs written beside the path and
// renamed over it (--metrics, --plot): run as root, --metrics /dev/null replaced the system's
// null device with a CSV, and a FIFO became a plain file. (--dot writes in place: a pipe or
// /dev/stdout serves it.)
// /dev/stdout is refused too, by name (or a link's): redirected to a file, it led to the log,
// which the first write replaced, and the next failed after training.
inline void check_replaceable(const std::string& path, const std::string& option) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (path.empty()) return;
    for (const fs::path& hop : detail::link_chain(path))
        if (detail::names_a_stream(hop))
            throw std::runtime_error(option + " " + path + ": names a device or a stream (" + hop.string() +
                                     "), which writing by renaming a new file over it would replace; give a "
                                     "file's name, or " + option + " '' to write none");
    if (!fs::exists(path, ec) || fs::is_regular_file(path, ec)) return;
    throw std::runtime_error(option + " " + path + ": is not a regular file (a device, FIFO or socket), which " +
                             "writing would replace with one; give " + option + " '' to write none");
}

// What a file output written by renaming (--metrics, --plot) must pass before the run and
// before each write.
inline void check_output_target(const std::string& path, const std::string& option, Output kind) {
    check_replaceable(path, option);
    check_replaces_only_own(path, option, kind);
}

// --dot writes in place, so a pipe or /dev/stdout serves it; a device other than a terminal
// or /dev/null would be written over, and a file only if an example wrote it.
inline void check_graph_target(const std::string& path, const std::string& option) {
    struct stat st{};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
    const unsigned kind = major(st.st_rdev);
    const bool terminal_or_null = S_ISCHR(st.st_mode) && ((kind == 1 && minor(st.st_rdev) == 3) || kind == 4 ||
                                                          kind == 5 || (kind >= 136 && kind <= 143));
    if (S_ISBLK(st.st_mode) || (S_ISCHR(st.st_mode) && !terminal_or_null))
        throw std::runtime_error(option + " " + path + ": is a device, which writing would overwrite");
    check_replaces_only_own(path, option, Output::dot);
}

// Throws if the file `path` would be inside the checkpoint directory `checkpoint`, where the
// next save would refuse to replace the checkpoint (it never deletes files it did not write).
inline void check_outside_checkpoint(const std::string& path, const std::string& option, const std::string& checkpoint) {
    namespace fs = std::filesystem;
    if (path.empty() || checkpoint.empty()) return;
    const fs::path dir = fs::weakly_canonical(checkpoint), file = fs::weakly_canonical(path);
    if (file.parent_path() == dir) {
        throw std::runtime_error(option + " " + path + " is inside the checkpoint directory " + checkpoint +
                                 ", which holds only the checkpoint's own files: write it beside it instead");
    }
}

// Throws if two outputs are one path (a.csv and ./a.csv included): one would overwrite the
// other, or the save would refuse the file standing where its checkpoint goes, after training.
inline void check_distinct_outputs(const std::string& save, const std::string& metrics, const std::string& plot) {
    namespace fs = std::filesystem;
    const std::pair<std::string, const char*> outputs[] = {{save, "--save"}, {metrics, "--metrics"}, {plot, "--plot"}};
    auto resolved = [](const std::pair<std::string, const char*>& output) {
        const fs::path p = output.second == std::string("--save") ? nn::checkpoint_directory(output.first)
                                                                   : fs::path(output.first);
        return fs::weakly_canonical(p);
    };
    for (std::size_t a = 0; a < 3; ++a)
        for (std::size_t b = a + 1; b < 3; ++b)
            if (!outputs[a].first.empty() && !outputs[b].first.empty() && resolved(outputs[a]) == resolved(outputs[b]))
                throw std::runtime_error(std::string(outputs[a].second) + " " + outputs[a].first + " and " +
                                         outputs[b].second + " " + outputs[b].first +
                                         " are the same path: each output needs its own");
}

// Throws if the output file `path` is the file `input` the run reads (--metrics data.csv
// with --csv data.csv, or a hard link to it): the first epoch's metrics replaced the data.
inline void check_not_input(const std::string& path, const std::string& option, const std::string& input,
                            const std::string& input_option) {
    std::error_code ec;
    if (path.empty() || input.empty() || !std::filesystem::equivalent(path, input, ec)) return;
    throw std::runtime_error(option + " " + path + " is the file " + input_option + " " + input +
                             " reads: writing it would replace the data; write it elsewhere");
}

// Every path a training run writes (--save, --metrics, --plot; empty ones are skipped), checked
// before the data is loaded and the first epoch runs; `csv` is the data file read (or "").
inline void check_run_outputs(const std::string& save, const std::string& metrics, const std::string& plot,
                              const std::string& csv = "") {
    check_distinct_outputs(save, metrics, plot);
    check_checkpoint_dir(save, "--save");
    for (const auto& [path, option, kind] :
         {std::tuple{metrics, "--metrics", Output::metrics}, std::tuple{plot, "--plot", Output::plot}}) {
        check_output_file(path, option);
        check_outside_checkpoint(path, option, save);
        check_not_input(path, option, csv, "--csv");  // before the general refusal: it says more
        check_output_target(path, option, kind);
    }
}

}  // namespace example
