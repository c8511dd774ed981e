#pragma once
// An output path (--metrics, --plot, --dot) replaces only a file an example wrote there
// before, so that a mistyped name never costs a user a file: `--metrics notes.txt` replaced
// the notes with a CSV. Each kind of output carries a mark its check looks for: the metrics
// CSV its header line, a DOT file its first line, and a plot a mark put into gnuplot's
// image (a PNG text chunk "Software: tapegrad", an SVG comment), since a user's own image
// would otherwise look like one of ours. An empty file holds nothing to lose.

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <zlib.h>

namespace example {

inline const std::string metrics_header = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n";
// autodiff::to_dot's first line, and the line of node attributes it writes a few lines on.
inline const std::string dot_first_line = "digraph tape {\n";
inline const std::string dot_node_line = "  node [shape=box, style=\"rounded,filled\", fillcolor=white";
inline const std::string svg_mark = "<!-- written by tapegrad -->\n";
constexpr std::size_t largest_metrics_file = std::size_t(16) << 20;  // a million epochs' rows

enum class Output { metrics, plot, dot };

// A plot is SVG when its name ends in .svg, else PNG (MetricsLog::plot and the check agree).
inline bool is_svg_path(const std::string& path) {
    return path.size() > 4 && path.compare(path.size() - 4, 4, ".svg") == 0;
}

namespace detail {
inline const std::string png_signature("\x89PNG\r\n\x1a\n", 8);
constexpr std::size_t png_ihdr_end = 8 + 4 + 4 + 13 + 4;  // signature, then IHDR: length, type, 13 bytes, CRC

inline std::string big_endian(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

// The tEXt chunk "Software" = "tapegrad", as it stands right after IHDR in a marked PNG.
inline std::string png_mark() {
    const std::string body = std::string("tEXt") + std::string("Software\0tapegrad", 17);
    const auto crc = static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
    return big_endian(static_cast<std::uint32_t>(body.size() - 4)) + body + big_endian(crc);
}

// The first `n` bytes of the regular file at path (fewer if it is shorter).
inline std::string head_of(const std::filesystem::path& path, std::size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string head(n, '\0');
    in.read(head.data(), static_cast<std::streamsize>(n));
    head.resize(static_cast<std::size_t>(in.gcount()));
    return head;
}

inline bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

// A row MetricsLog writes: six numbers, separated by commas.
inline bool is_metrics_row(const std::string& line) {
    std::size_t fields = 0, at = 0;
    for (;; ++fields) {
        const std::size_t comma = std::min(line.find(',', at), line.size());
        const std::string field = line.substr(at, comma - at);
        char* end = nullptr;
        std::strtod(field.c_str(), &end);
        if (field.empty() || end != field.c_str() + field.size()) return false;
        if (comma == line.size()) return fields + 1 == 6;
        at = comma + 1;
    }
}

// The header, then only rows MetricsLog writes: a user's CSV that happens to begin with the
// same header but holds anything else is not ours.
inline bool is_metrics_csv(const std::filesystem::path& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size > largest_metrics_file) return false;
    const std::string text = head_of(path, static_cast<std::size_t>(size));
    if (!starts_with(text, metrics_header)) return false;
    for (std::size_t at = metrics_header.size(); at < text.size();) {
        const std::size_t end = text.find('\n', at);
        if (end == std::string::npos || !is_metrics_row(text.substr(at, end - at))) return false;
        at = end + 1;
    }
    return true;
}

// Where following `path`'s symbolic links leads, hop by hop, without requiring the end to
// exist; the hops, the path included, go into `hops`. Stops after 40 (a loop).
inline std::vector<std::filesystem::path> link_chain(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::vector<fs::path> hops{fs::absolute(path).lexically_normal()};
    std::error_code ec;
    while (hops.size() <= 40 && fs::is_symlink(hops.back(), ec)) {
        const fs::path target = fs::read_symlink(hops.back(), ec);
        if (ec) break;
        hops.push_back((target.is_absolute() ? target : hops.back().parent_path() / target).lexically_normal());
    }
    return hops;
}

// /dev/stdout, /dev/fd/N, /proc/self/fd/N: a stream of this process, reached by name.
inline bool names_a_stream(const std::filesystem::path& p) {
    const std::string s = p.string();
    return starts_with(s, "/dev/") || starts_with(s, "/proc/");
}
}  // namespace detail

// gnuplot's image with the mark of an example's plot added (the PNG chunk after IHDR, the
// SVG comment after its XML declaration). Throws if a PNG is not one.
inline std::string mark_plot(std::string image, bool svg) {
    if (svg) {
        std::size_t at = 0;
        if (detail::starts_with(image, "<?xml")) {
            const std::size_t end_of_line = image.find('\n');
            at = end_of_line == std::string::npos ? image.size() : end_of_line + 1;
        }
        return image.insert(at, svg_mark);
    }
    if (!detail::starts_with(image, detail::png_signature) || image.size() < detail::png_ihdr_end ||
        image.compare(12, 4, "IHDR") != 0)
        throw std::runtime_error("gnuplot's output is not a PNG image");
    return image.insert(detail::png_ihdr_end, detail::png_mark());
}

// Whether the file's first bytes are those of an output of this kind written by an example.
inline bool written_by_example(const std::filesystem::path& path, Output kind) {
    switch (kind) {
    case Output::metrics:
        return detail::is_metrics_csv(path);
    case Output::dot: {
        const std::string head = detail::head_of(path, 1024);
        return detail::starts_with(head, dot_first_line) && head.find("\n" + dot_node_line) != std::string::npos;
    }
    case Output::plot:
        if (is_svg_path(path.string())) return detail::head_of(path, 512).find(svg_mark) != std::string::npos;
        const std::string mark = detail::png_mark(), head = detail::head_of(path, detail::png_ihdr_end + mark.size());
        return detail::starts_with(head, detail::png_signature) && head.size() == detail::png_ihdr_end + mark.size() &&
               head.compare(detail::png_ihdr_end, mark.size(), mark) == 0;
    }
    return false;
}

// What nn::write_file_atomically may replace for an output of this kind: an empty file, or
// one an example wrote. Asked of the file it displaced, after the check before the run.
inline bool replaceable_as_own(const std::filesystem::path& path, Output kind) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return false;
    return std::filesystem::file_size(path, ec) == 0 || written_by_example(path, kind);
}

// Throws unless writing `path` loses nothing: it does not exist, is not a regular file (a
// pipe, /dev/null: check_replaceable decides those), is empty, or is an output of this kind
// an example wrote and may be written (it has write permission). Checked before the run and
// again before every write: a file may appear there while a run trains.
inline void check_replaces_only_own(const std::string& path, const std::string& option, Output kind) {
    namespace fs = std::filesystem;
    if (path.empty()) return;
    auto refuse = [&](const std::string& why) { throw std::runtime_error(option + " " + path + ": " + why); };
    const std::vector<fs::path> chain = detail::link_chain(path);
    if (chain.size() > 40) refuse("too many levels of symbolic links");
    std::error_code ec;
    const fs::file_status status = fs::status(chain.back(), ec);
    if (fs::is_symlink(path, ec) && !fs::exists(status))
        refuse("a symbolic link to " + chain.back().string() + ", which does not exist: writing would replace the link");
    if (!fs::is_regular_file(status)) return;
    const auto size = fs::file_size(chain.back(), ec);
    if (ec || size == 0) return;
    if (std::ifstream probe(chain.back(), std::ios::binary); !probe)
        refuse(std::string("the file exists and cannot be read to check that an example wrote it: ") + std::strerror(errno));
    if ((fs::perms::owner_write & status.permissions()) == fs::perms::none)
        refuse("the file is read-only (chmod u+w it to let the run replace it)");
    if (written_by_example(chain.back(), kind)) return;
    const char* what = kind == Output::metrics ? "a metrics CSV" : kind == Output::dot ? "a tape graph" : "a plot";
    refuse(std::string("the file exists and is not ") + what +
           " a tapegrad example wrote, so writing would lose it" +
           (kind == Output::plot ? " (plots made before tapegrad marked its plots are refused too)" : "") +
           "; remove it first, choose another name, or give " + option + " '' to write none");
}

}  // namespace example
