#include "nn/io/checkpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fcntl.h>  // AT_FDCWD
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28, _GNU_SOURCE)
#include <zlib.h>

#include <xtensor/xnpy.hpp>

#include "nn/io/atomic_file.hpp"

// The manifest names dtypes as NumPy does ("<f4"): little-endian hosts only.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint.cpp assumes little-endian");

namespace nn {
namespace fs = std::filesystem;
namespace {

constexpr const char* format_name = "tapegrad-checkpoint";
constexpr const char* manifest_name = "manifest.json";

// ---- A JSON subset: objects, arrays, strings, non-negative integers. Enough for the
// ---- manifest, small enough to read in one screen, and still loadable by json.load.

struct Json {
    enum class Kind { object, array, string, number } kind = Kind::string;
    std::string text;               // a string's value, or a number's digits
    std::vector<std::string> keys;  // object: keys[i] names items[i]
    std::vector<Json> items;        // object values, or array elements
};

void write_json_string(std::ostream& out, const std::string& s) {
    out << '"';
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out << '\\' << c;
        } else if (u < 0x20) {
            char buf[7];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out << buf;
        } else {
            out << c;  // UTF-8 passes through unchanged
        }
    }
    out << '"';
}

class JsonReader {
public:
    JsonReader(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}

    Json document() {
        Json v = value(0);
        skip_space();
        if (pos_ != text_.size()) fail("unexpected text after the closing brace");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw DataError(file_ + ": malformed manifest at byte " + std::to_string(pos_) + ": " + what);
    }
    void skip_space() {
        while (pos_ < text_.size() && std::string_view(" \t\r\n").find(text_[pos_]) != std::string_view::npos) ++pos_;
    }
    char peek() {
        skip_space();
        if (pos_ == text_.size()) fail("unexpected end of file");
        return text_[pos_];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    // Between elements of an object or array: true (and consumed) at the closing bracket;
    // otherwise consumes the comma that must separate elements after the first.
    bool close_or_comma(char close, bool first) {
        if (peek() == close) {
            ++pos_;
            return true;
        }
        if (!first) expect(',');
        return false;
    }
    Json value(int depth) {
        if (depth > 8) fail("nested too deeply");
        const char c = peek();
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') return Json{Json::Kind::string, string(), {}, {}};
        if (c >= '0' && c <= '9') return number();
        fail(std::string("unexpected character '") + c + "'");
    }
    Json object(int depth) {
        Json obj{Json::Kind::object, {}, {}, {}};
        expect('{');
        for (bool first = true; !close_or_comma('}', first); first = false) {
            if (peek() != '"') fail("expected a quoted key");
            obj.keys.push_back(string());
            expect(':');
            obj.items.push_back(value(depth + 1));
        }
        return obj;
    }
    Json array(int depth) {
        Json arr{Json::Kind::array, {}, {}, {}};
        expect('[');
        for (bool first = true; !close_or_comma(']', first); first = false) {
            arr.items.push_back(value(depth + 1));
        }
        return arr;
    }
    Json number() {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
        return Json{Json::Kind::number, std::string(text_.substr(start, pos_ - start)), {}, {}};
    }
    std::string string() {
        ++pos_;  // the opening quote
        std::string s;
        while (pos_ < text_.size() && text_[pos_] != '"') {
            char c = text_[pos_++];
            if (c == '\\') {
                if (pos_ == text_.size()) break;
                c = text_[pos_++];
                if (c == 'u') {
                    s += unicode_escape();
                    continue;
                }
                const char* from = "\"\\/bfnrt";
                const char* to = "\"\\/\b\f\n\r\t";
                const char* hit = std::strchr(from, c);
                if (!hit || !c) fail(std::string("bad escape '\\") + c + "'");
                c = to[hit - from];
            }
            s += c;
        }
        if (pos_ == text_.size()) fail("unterminated string");
        ++pos_;  // the closing quote
        return s;
    }
    // \uXXXX as UTF-8; surrogate pairs are not needed by anything we write.
    std::string unicode_escape() {
        if (pos_ + 4 > text_.size()) fail("short \\u escape");
        unsigned cp = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = text_[pos_++];
            const int d = (h >= '0' && h <= '9') ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (d < 0) fail("bad hex digit in \\u escape");
            cp = cp * 16 + static_cast<unsigned>(d);
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) fail("surrogate \\u escapes are not supported");
        std::string out;
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
        return out;
    }

    std::string_view text_;
    std::string file_;
    std::size_t pos_ = 0;
};

// Typed access to the parsed manifest: every mistake names the file and the key.
struct ManifestView {
    std::string file;

    const Json& member(const Json& obj, const std::string& key) const {
        if (obj.kind != Json::Kind::object) fail("'" + key + "' looked up in a non-object");
        for (std::size_t i = 0; i < obj.keys.size(); ++i) {
            if (obj.keys[i] == key) return obj.items[i];
        }
        fail("missing key '" + key + "'");
    }
    const Json& of_kind(const Json& v, Json::Kind kind, const std::string& what) const {
        if (v.kind != kind) fail("'" + what + "' has the wrong type");
        return v;
    }
    std::string string(const Json& obj, const std::string& key) const {
        return of_kind(member(obj, key), Json::Kind::string, key).text;
    }
    std::size_t size(const Json& v, const std::string& what) const {
        const std::string& digits = of_kind(v, Json::Kind::number, what).text;
        try {
            std::size_t used = 0;
            const unsigned long long n = std::stoull(digits, &used);
            if (used == digits.size()) return static_cast<std::size_t>(n);
        } catch (const std::exception&) {
        }
        fail("'" + what + "' is not a valid size: " + digits);
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw DataError(file + ": malformed manifest: " + what);
    }
};

// ---- Arrays <-> .npy bytes

template <class T>
constexpr const char* dtype_name() {
    return sizeof(T) == 4 ? "<f4" : "<f8";
}

std::string crc32_hex(const std::string& bytes) {
    uLong crc = crc32(0L, Z_NULL, 0);
    // crc32 takes a uInt length: feed large arrays in pieces.
    for (std::size_t at = 0; at < bytes.size();) {
        const uInt n = static_cast<uInt>(std::min<std::size_t>(bytes.size() - at, 1u << 30));
        crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + at), n);
        at += n;
    }
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08lx", static_cast<unsigned long>(crc));
    return buf;
}

// What xt::load_npy (xtensor 0.24) trusts without checking, checked here first: it reads
// the header length from signed chars (undefined behaviour, and a wrong length, for a byte
// >= 0x80), allocates that length before reading, indexes empty strings on a malformed
// header dict, and allocates whatever shape the header announces. Accepted: the header
// NumPy writes for a 2-d array of this dtype and the manifest's shape, then exactly its data.
template <class T>
void check_npy_header(const std::string& bytes, const std::vector<std::size_t>& shape) {
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error("no .npy magic");
    const auto major = static_cast<unsigned char>(bytes[6]);
    if (major < 1 || major > 3) throw std::runtime_error("unsupported .npy version " + std::to_string(major));
    const std::size_t width = major == 1 ? 2 : 4;
    if (bytes.size() < 8 + width) throw std::runtime_error("truncated header");
    std::size_t length = 0;
    for (std::size_t i = 0; i < width; ++i) {
        const auto b = static_cast<unsigned char>(bytes[8 + i]);
        if (b >= 0x80) throw std::runtime_error("header of 128 bytes or more: not supported");
        length |= std::size_t(b) << (8 * i);
    }
    const std::size_t data_start = 8 + width + length;
    if (data_start > bytes.size()) throw std::runtime_error("header longer than the file");
    std::string header = bytes.substr(8 + width, length);
    header.erase(std::remove(header.begin(), header.end(), ' '), header.end());
    static const std::regex numpy_2d(R"(\{'descr':'([<|]f[48])','fortran_order':(True|False),'shape':\((\d{1,15}),(\d{1,15}),?\),?\}\n)");
    std::smatch m;
    if (!std::regex_match(header, m, numpy_2d)) throw std::runtime_error("not the header of a 2-d float array");
    if (m[1].str().substr(1) != std::string(dtype_name<T>()).substr(1)) throw std::runtime_error("dtype " + m[1].str());
    const std::size_t rows = std::stoull(m[3].str()), cols = std::stoull(m[4].str());
    if (rows != shape[0] || cols != shape[1]) {
        throw std::runtime_error("holds a " + std::to_string(rows) + "x" + std::to_string(cols) +
                                 " array but the manifest says " + std::to_string(shape[0]) + "x" +
                                 std::to_string(shape[1]));
    }
    if (bytes.size() - data_start != rows * cols * sizeof(T)) throw std::runtime_error("data size does not match the shape");
}

template <class T>
xt::xtensor<T, 2> parse_npy(const std::string& bytes, const std::string& file,
                            const std::vector<std::size_t>& shape) {
    xt::xtensor<T, 2> result;
    try {
        check_npy_header<T>(bytes, shape);
        std::istringstream in(bytes);
        auto loaded = xt::load_npy<T>(in);
        if (loaded.dimension() != 2) throw std::runtime_error("not a 2-d array");
        result = loaded;
    } catch (const std::exception& e) {
        throw DataError(file + ": not a valid " + dtype_name<T>() + " .npy matrix: " + e.what());
    }
    if (result.shape(0) != shape[0] || result.shape(1) != shape[1]) {
        throw DataError(file + ": holds a " + std::to_string(result.shape(0)) + "x" +
                        std::to_string(result.shape(1)) + " array but the manifest says " +
                        std::to_string(shape[0]) + "x" + std::to_string(shape[1]));
    }
    return result;
}

std::string read_whole_file(const fs::path& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path.string() + ": missing " + what + " (cannot open)");
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) throw DataError(path.string() + ": read error");
    return content.str();
}

void check_array_name(const std::string& name) {
    const bool ok = !name.empty() && name[0] != '.' && name != "manifest" &&
                    name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_-.") == std::string::npos;
    if (!ok) {
        throw autodiff::Error("save_checkpoint: array name '" + name +
                              "' cannot be a file name (use letters, digits, '_', '-', '.', "
                              "not starting with '.')");
    }
}

// ---- Swapping a finished directory into place

// Used only where the file system cannot exchange two directories atomically: the old
// checkpoint waits here while the new one is renamed in, and load_checkpoint falls back
// to it if a crash struck between the two renames.
fs::path previous_of(const fs::path& dir) {
    return fs::path(dir.string() + ".previous");
}

bool is_replaceable(const fs::path& dir) {
    return fs::is_directory(dir) && (fs::is_empty(dir) || fs::exists(dir / manifest_name));
}

// Removes the directory at `path` when it goes out of scope, unless released.
struct DirGuard {
    fs::path path;
    ~DirGuard() {
        if (path.empty()) return;
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

[[noreturn]] void rename_failed(const fs::path& from, const fs::path& to) {
    throw IoError("save_checkpoint: cannot rename '" + from.string() + "' to '" + to.string() +
                  "': " + std::strerror(errno));
}

// Puts the complete directory `fresh` at `dir`. Afterwards `fresh` holds whatever was at
// `dir` before (or nothing), for the caller to remove.
void swap_into_place(const fs::path& fresh, const fs::path& dir) {
    if (!fs::exists(dir)) {
        if (::rename(fresh.c_str(), dir.c_str()) != 0) rename_failed(fresh, dir);
        return;
    }
    if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) return;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) rename_failed(fresh, dir);
    const fs::path previous = previous_of(dir);
    std::error_code ignored;
    fs::remove_all(previous, ignored);
    if (::rename(dir.c_str(), previous.c_str()) != 0) rename_failed(dir, previous);
    if (::rename(fresh.c_str(), dir.c_str()) != 0) rename_failed(fresh, dir);
    fsync_path(dir.parent_path());
    if (::rename(previous.c_str(), fresh.c_str()) != 0) rename_failed(previous, fresh);
}

void write_manifest(std::ostream& out, const Checkpoint& ckpt,
                    const std::map<std::string, std::pair<std::size_t, std::string>>& files) {
    out << "{\n  \"format\": \"" << format_name << "\",\n  \"version\": "
        << checkpoint_format_version << ",\n  \"meta\": {";
    const char* sep = "\n    ";
    for (const auto& [key, value] : ckpt.meta) {
        out << sep;
        write_json_string(out, key);
        out << ": ";
        write_json_string(out, value);
        sep = ",\n    ";
    }
    out << "\n  },\n  \"arrays\": {";
    sep = "\n    ";
    for (const auto& entry : ckpt.arrays) {
        // Plain references, not structured bindings: clang 14 cannot capture those in a lambda.
        const std::string& name = entry.first;
        const std::size_t bytes = files.at(name).first;
        const std::string& crc = files.at(name).second;
        std::visit([&](const auto& a) {
            using T = typename std::decay_t<decltype(a)>::value_type;
            out << sep;
            write_json_string(out, name);
            out << ": {\"file\": \"" << name << ".npy\", \"dtype\": \"" << dtype_name<T>()
                << "\", \"shape\": [" << a.shape(0) << ", " << a.shape(1) << "], \"bytes\": "
                << bytes << ", \"crc32\": \"" << crc << "\"}";
        }, entry.second);
        sep = ",\n    ";
    }
    out << "\n  },\n";
}

// The manifest checks itself: its last member is the CRC32 of every byte before that member,
// so a flipped byte in the metadata, a shape or a checksum is caught too.
constexpr const char* manifest_crc_key = "\"manifest_crc32\"";

std::string manifest_text(const Checkpoint& ckpt,
                          const std::map<std::string, std::pair<std::size_t, std::string>>& files) {
    std::ostringstream body;
    write_manifest(body, ckpt, files);
    std::string text = body.str() + "  ";
    return text + manifest_crc_key + ": \"" + crc32_hex(text) + "\"\n}\n";
}

}  // namespace

void save_checkpoint(const fs::path& dir_in, const Checkpoint& ckpt) {
    // "ckpt/" and "ckpt" are the same checkpoint; the temp name needs the last component.
    fs::path dir = dir_in.lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();
    if (dir.empty()) throw autodiff::Error("save_checkpoint: empty directory name");
    if (!dir.has_parent_path()) dir = fs::path(".") / dir;
    for (const auto& entry : ckpt.arrays) check_array_name(entry.first);
    if (fs::exists(dir) && !is_replaceable(dir)) {
        throw IoError("save_checkpoint: refusing to replace '" + dir.string() +
                      "': it exists and is not a checkpoint (no " + manifest_name + ")");
    }
    std::error_code error;
    fs::create_directories(dir.parent_path(), error);
    if (error) throw IoError("save_checkpoint: cannot create '" + dir.parent_path().string() + "': " + error.message());

    DirGuard fresh{make_temp_dir_beside(dir)};
    std::map<std::string, std::pair<std::size_t, std::string>> files;  // name -> bytes, crc32
    for (const auto& [name, array] : ckpt.arrays) {
        const std::string bytes = std::visit([](const auto& a) { return xt::dump_npy(a); }, array);
        write_file_atomically(fresh.path / (name + ".npy"),
                              [&](std::ostream& out) { out.write(bytes.data(), std::streamsize(bytes.size())); });
        files[name] = {bytes.size(), crc32_hex(bytes)};
    }
    // The manifest last: a directory without one is never mistaken for a checkpoint.
    const std::string manifest = manifest_text(ckpt, files);
    write_file_atomically(fresh.path / manifest_name,
                          [&](std::ostream& out) { out.write(manifest.data(), std::streamsize(manifest.size())); });
    fsync_path(fresh.path);

    // A crash in the fallback's window leaves the old checkpoint at .previous; recover it.
    if (!fs::exists(dir) && fs::exists(previous_of(dir))) {
        if (::rename(previous_of(dir).c_str(), dir.c_str()) != 0) rename_failed(previous_of(dir), dir);
    }
    swap_into_place(fresh.path, dir);
    fsync_path(dir.parent_path());
    // `fresh` now names the old checkpoint (or nothing): the guard removes it.
}

Checkpoint load_checkpoint(const fs::path& dir_in) {
    fs::path dir = dir_in;
    if (!fs::is_directory(dir) && fs::is_directory(previous_of(dir))) dir = previous_of(dir);
    if (!fs::is_directory(dir)) throw DataError(dir_in.string() + ": no such checkpoint directory");

    const fs::path manifest_path = dir / manifest_name;
    const std::string text = read_whole_file(manifest_path, "checkpoint manifest");
    const Json root = JsonReader(text, manifest_path.string()).document();
    const ManifestView m{manifest_path.string()};
    if (m.string(root, "format") != format_name) m.fail("format is not " + std::string(format_name));
    const std::size_t version = m.size(m.member(root, "version"), "version");
    if (version != checkpoint_format_version) {
        m.fail("version " + std::to_string(version) + " is not supported (this build reads version " +
               std::to_string(checkpoint_format_version) + ")");
    }

    Checkpoint ckpt;
    const Json& meta = m.of_kind(m.member(root, "meta"), Json::Kind::object, "meta");
    for (std::size_t i = 0; i < meta.keys.size(); ++i) {
        ckpt.meta[meta.keys[i]] = m.of_kind(meta.items[i], Json::Kind::string, "meta." + meta.keys[i]).text;
    }
    const Json& arrays = m.of_kind(m.member(root, "arrays"), Json::Kind::object, "arrays");
    for (std::size_t i = 0; i < arrays.keys.size(); ++i) {
        const std::string& name = arrays.keys[i];
        const Json& entry = arrays.items[i];
        const std::string file = m.string(entry, "file");
        // The manifest must not point outside the checkpoint.
        if (file != name + ".npy") m.fail("array '" + name + "' has file '" + file + "', expected '" + name + ".npy'");
        const Json& shape_json = m.of_kind(m.member(entry, "shape"), Json::Kind::array, name + ".shape");
        if (shape_json.items.size() != 2) m.fail("array '" + name + "' is not 2-d");
        const std::vector<std::size_t> shape{m.size(shape_json.items[0], name + ".shape"),
                                             m.size(shape_json.items[1], name + ".shape")};
        const std::size_t expected_bytes = m.size(m.member(entry, "bytes"), name + ".bytes");
        const std::string expected_crc = m.string(entry, "crc32");
        const std::string dtype = m.string(entry, "dtype");

        const fs::path path = dir / file;
        const std::string bytes = read_whole_file(path, "array file named in the manifest");
        if (bytes.size() != expected_bytes) {
            throw DataError(path.string() + ": truncated or overwritten: the manifest says " +
                            std::to_string(expected_bytes) + " bytes, the file has " +
                            std::to_string(bytes.size()));
        }
        const std::string crc = crc32_hex(bytes);
        if (crc != expected_crc) {
            throw DataError(path.string() + ": corrupted: CRC32 is " + crc + " but the manifest says " +
                            expected_crc);
        }
        if (dtype == dtype_name<float>()) {
            ckpt.arrays[name] = parse_npy<float>(bytes, path.string(), shape);
        } else if (dtype == dtype_name<double>()) {
            ckpt.arrays[name] = parse_npy<double>(bytes, path.string(), shape);
        } else {
            m.fail("array '" + name + "' has dtype '" + dtype + "' (supported: <f4, <f8)");
        }
    }
    // Last, so that the errors above still say what is wrong with a hand-edited manifest.
    const std::string expected_manifest_crc = m.string(root, "manifest_crc32");
    const std::string manifest_crc = crc32_hex(text.substr(0, text.rfind(manifest_crc_key)));
    if (manifest_crc != expected_manifest_crc) {
        throw DataError(manifest_path.string() + ": corrupted: CRC32 of its content is " + manifest_crc +
                        " but its manifest_crc32 says " + expected_manifest_crc);
    }
    return ckpt;
}

}  // namespace nn
