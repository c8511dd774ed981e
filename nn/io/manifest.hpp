#pragma once
/// @file
/// A checkpoint's manifest.json: its JSON text (written and read with nlohmann-json), the
/// description of every array file, and the manifest's own checksum: its last member,
/// "manifest_crc32", is the CRC32 of every byte of the text before that member.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nn {

/// The manifest's name inside a checkpoint directory.
inline constexpr const char* manifest_file_name = "manifest.json";

/// One array file as the manifest describes it.
struct ManifestArray {
    std::string name;   ///< the array's name, a plain file name without ".npy"
    std::string dtype;  ///< "<f4" or "<f8"
    std::size_t rows = 0, cols = 0;
    std::size_t bytes = 0;  ///< the .npy file's size
    std::string crc32;      ///< of the .npy file, 8 lowercase hex digits
    /// The file inside the checkpoint directory: always name + ".npy".
    std::string file() const { return name + ".npy"; }
};

/// What a manifest says, and the text it was read from.
struct Manifest {
    std::map<std::string, std::string> meta;
    std::vector<ManifestArray> arrays;
    std::string text;   ///< as read
    std::string crc32;  ///< its manifest_crc32 member
};

/// The CRC32 of `bytes` as 8 lowercase hex digits.
std::string crc32_hex(const std::string& bytes);

/// Throws std::invalid_argument unless `name` can be an array's file name inside the
/// checkpoint: letters, digits, '_', '-', '.', not starting with '.', not "manifest".
void check_array_name(const std::string& name, const std::string& who);

/// The manifest's JSON text for `meta` and `arrays`, its manifest_crc32 last.
std::string manifest_text(const std::map<std::string, std::string>& meta, const std::vector<ManifestArray>& arrays);

/// Parses and checks the structure of a manifest's text (format, version, types, array names
/// that stay inside the directory), not its checksum. DataError naming `file` otherwise.
Manifest parse_manifest(std::string text, const std::string& file);

/// Reads `dir`/manifest.json (a regular file, at most 16 MiB) and parses it.
Manifest read_manifest(const std::filesystem::path& dir);

/// DataError naming `file` unless the manifest's manifest_crc32 matches its text.
void verify_manifest_crc(const Manifest& manifest, const std::string& file);

}  // namespace nn
