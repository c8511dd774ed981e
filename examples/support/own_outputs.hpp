#pragma once
// An output path (--metrics, --plot, --dot) replaces only a file an example wrote there
// before, so that a mistyped name never costs a user a file: `--metrics notes.txt` replaced
// the notes with a CSV. Each kind of output carries a mark its check looks for: the metrics
// CSV its header line, a DOT file its first line, and a plot a mark put into gnuplot's
// image (a PNG text chunk "Software: tapegrad", an SVG comment), since a user's own image
// would otherwise look like one of ours. An empty file holds nothing to lose.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <zlib.h>

namespace example {

inline const std::string metrics_header = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n";
inline const std::string dot_first_line = "digraph tape {\n";  // autodiff::to_dot's
inline const std::string svg_mark = "<!-- written by tapegrad -->\n";

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
        return detail::head_of(path, metrics_header.size()) == metrics_header;
    case Output::dot:
        return detail::head_of(path, dot_first_line.size()) == dot_first_line;
    case Output::plot:
        if (is_svg_path(path.string())) return detail::head_of(path, 512).find(svg_mark) != std::string::npos;
        const std::string mark = detail::png_mark(), head = detail::head_of(path, detail::png_ihdr_end + mark.size());
        return detail::starts_with(head, detail::png_signature) && head.size() == detail::png_ihdr_end + mark.size() &&
               head.compare(detail::png_ihdr_end, mark.size(), mark) == 0;
    }
    return false;
}

// Throws unless writing `path` loses nothing: it does not exist, is not a regular file (a
// pipe, /dev/stdout: check_replaceable decides those), is empty, or is an output of this kind
// an example wrote.
inline void check_replaces_only_own(const std::string& path, const std::string& option, Output kind) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (path.empty() || !fs::is_regular_file(path, ec) || fs::file_size(path, ec) == 0 || ec) return;
    if (written_by_example(path, kind)) return;
    const char* what = kind == Output::metrics ? "a metrics CSV" : kind == Output::dot ? "a tape graph" : "a plot";
    throw std::runtime_error(option + " " + path + ": the file exists and is not " + what +
                             " a tapegrad example wrote, so writing would lose it; remove it first or choose another name");
}

}  // namespace example
