#include "nn/io/manifest.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "nn/data_error.hpp"
#include "nn/io/checkpoint.hpp"
#include "nn/io/regular_file.hpp"

namespace nn {
namespace {

using Json = nlohmann::ordered_json;  // keeps members in the order written: the checksum must be last

constexpr const char* format_name = "tapegrad-checkpoint";
constexpr const char* crc_member = "\"manifest_crc32\"";
constexpr std::size_t max_manifest_bytes = std::size_t(16) << 20;
constexpr int max_depth = 8;  // the manifest nests 4 deep; anything deeper is not one

// Typed access to the parsed manifest: every mistake names the file and the key.
struct ManifestView {
    std::string file;

    [[noreturn]] void fail(const std::string& what) const { throw DataError(file + ": malformed manifest: " + what); }
    const Json& member(const Json& obj, const std::string& key) const {
        if (!obj.is_object()) fail("'" + key + "' looked up in a non-object");
        const auto it = obj.find(key);
        if (it == obj.end()) fail("missing key '" + key + "'");
        return *it;
    }
    const Json& object(const Json& obj, const std::string& key) const {
        const Json& v = member(obj, key);
        if (!v.is_object()) fail("'" + key + "' has the wrong type");
        return v;
    }
    std::string string(const Json& obj, const std::string& key) const {
        const Json& v = member(obj, key);
        if (!v.is_string()) fail("'" + key + "' has the wrong type");
        return v.get<std::string>();
    }
    std::size_t size(const Json& v, const std::string& what) const {
        if (!v.is_number_unsigned()) fail("'" + what + "' is not a valid size: " + v.dump());
        return v.get<std::size_t>();
    }
};

Json parse_json(const std::string& text, const std::string& file) {
    struct TooDeep {};
    try {
        return Json::parse(text, [](int depth, Json::parse_event_t, Json&) {
            if (depth > max_depth) throw TooDeep{};
            return true;
        });
    } catch (const Json::exception& e) {
        throw DataError(file + ": malformed manifest: " + e.what());
    } catch (const TooDeep&) {
        throw DataError(file + ": malformed manifest: nested too deeply");
    }
}

ManifestArray parse_array(const ManifestView& m, const std::string& name, const Json& entry) {
    try {
        check_array_name(name, "manifest");
    } catch (const autodiff::Error& e) {
        m.fail(e.what());
    }
    ManifestArray a;
    a.name = name;
    const std::string file = m.string(entry, "file");
    // The manifest must not point outside the checkpoint.
    if (file != a.file()) m.fail("array '" + name + "' has file '" + file + "', expected '" + a.file() + "'");
    const Json& shape = m.member(entry, "shape");
    if (!shape.is_array() || shape.size() != 2) m.fail("array '" + name + "' is not 2-d");
    a.rows = m.size(shape[0], name + ".shape");
    a.cols = m.size(shape[1], name + ".shape");
    a.bytes = m.size(m.member(entry, "bytes"), name + ".bytes");
    a.crc32 = m.string(entry, "crc32");
    a.dtype = m.string(entry, "dtype");
    if (a.dtype != "<f4" && a.dtype != "<f8") m.fail("array '" + name + "' has dtype '" + a.dtype + "' (supported: <f4, <f8)");
    return a;
}

}  // namespace

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

void check_array_name(const std::string& name, const std::string& who) {
    const bool ok = !name.empty() && name[0] != '.' && name != "manifest" &&
                    name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_-.") == std::string::npos;
    if (!ok) {
        throw autodiff::Error(who + ": array name '" + name +
                              (name == "manifest" ? "' is the checkpoint's own manifest's" :
                                                    "' cannot be a file name inside the checkpoint (use letters, digits, '_', "
                                                    "'-', '.', not starting with '.')"));
    }
}

std::string manifest_text(const std::map<std::string, std::string>& meta, const std::vector<ManifestArray>& arrays) {
    Json root = Json::object();
    root["format"] = format_name;
    root["version"] = checkpoint_format_version;
    root["meta"] = Json::object();
    for (const auto& [key, value] : meta) root["meta"][key] = value;
    root["arrays"] = Json::object();
    for (const ManifestArray& a : arrays) {
        root["arrays"][a.name] = Json{{"file", a.file()}, {"dtype", a.dtype}, {"shape", {a.rows, a.cols}},
                                      {"bytes", a.bytes}, {"crc32", a.crc32}};
    }
    std::string text;
    try {
        text = root.dump(2);
    } catch (const Json::type_error& e) {  // JSON strings are UTF-8: other bytes cannot round-trip
        throw autodiff::Error("save_checkpoint: metadata that is not valid UTF-8 (" + std::string(e.what()) + ")");
    }
    // Reopen the object to append the checksum of everything before it as its last member.
    text.erase(text.rfind('}'));
    while (!text.empty() && text.back() == '\n') text.pop_back();
    text += ",\n  ";
    return text + crc_member + ": \"" + crc32_hex(text) + "\"\n}\n";
}

Manifest parse_manifest(std::string text, const std::string& file) {
    const ManifestView m{file};
    const Json root = parse_json(text, file);
    if (!root.is_object()) m.fail("not a JSON object");
    if (m.string(root, "format") != format_name) m.fail("format is not " + std::string(format_name));
    const std::size_t version = m.size(m.member(root, "version"), "version");
    if (version != checkpoint_format_version) {
        m.fail("version " + std::to_string(version) + " is not supported (this build reads version " +
               std::to_string(checkpoint_format_version) + ")");
    }
    Manifest manifest;
    for (const auto& [key, value] : m.object(root, "meta").items()) {
        if (!value.is_string()) m.fail("'meta." + key + "' has the wrong type");
        manifest.meta[key] = value.get<std::string>();
    }
    for (const auto& [name, entry] : m.object(root, "arrays").items()) {
        manifest.arrays.push_back(parse_array(m, name, entry));
    }
    // Checked by verify_manifest_crc: a missing one is a malformed manifest.
    manifest.crc32 = m.string(root, "manifest_crc32");
    manifest.text = std::move(text);
    return manifest;
}

Manifest read_manifest(const std::filesystem::path& dir) {
    const std::filesystem::path path = dir / manifest_file_name;
    return parse_manifest(read_regular_file(path, max_manifest_bytes, "checkpoint manifest"), path.string());
}

void verify_manifest_crc(const Manifest& manifest, const std::string& file) {
    const std::string& text = manifest.text;
    const std::size_t at = text.rfind(crc_member);
    // The checksum covers what comes before it: anything after its value (a member added by
    // hand, which would override an earlier one of that name) is refused.
    const std::size_t value_end = text.find('"', text.find('"', at + std::strlen(crc_member) + 1) + 1);
    if (value_end == std::string::npos || text.find_first_not_of(" \t\r\n}", value_end + 1) != std::string::npos ||
        std::count(text.begin() + std::ptrdiff_t(value_end), text.end(), '}') != 1)
        throw DataError(file + ": corrupted: content after manifest_crc32, which must be its last member");
    const std::string actual = crc32_hex(text.substr(0, at));
    if (actual != manifest.crc32) {
        throw DataError(file + ": corrupted: CRC32 of its content is " + actual + " but its manifest_crc32 says " +
                        manifest.crc32);
    }
}

}  // namespace nn
