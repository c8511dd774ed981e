#pragma once
// Builds checkpoint manifests the way nn/io/checkpoint.cpp writes them, so the fuzzers get
// past the checksums to the parsers behind them: the manifest's own CRC32 is appended by
// manifest_with_crc, and an array's size and CRC32 are those of the bytes given.
#include <cstdio>
#include <string>

#include <zlib.h>

namespace fuzz {

inline std::string crc32_hex(const std::string& bytes) {
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()),
                            static_cast<uInt>(bytes.size()));
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08lx", static_cast<unsigned long>(crc));
    return buf;
}

// `body` is everything up to the last member: "{ ..., \"arrays\": {...},\n".
inline std::string manifest_with_crc(const std::string& body) {
    const std::string text = body + "  ";
    return text + "\"manifest_crc32\": \"" + crc32_hex(text) + "\"\n}\n";
}

inline std::string array_entry(const std::string& name, const std::string& dtype, std::size_t rows,
                               std::size_t cols, const std::string& bytes) {
    return "\"" + name + "\": {\"file\": \"" + name + ".npy\", \"dtype\": \"" + dtype + "\", \"shape\": [" +
           std::to_string(rows) + ", " + std::to_string(cols) + "], \"bytes\": " + std::to_string(bytes.size()) +
           ", \"crc32\": \"" + crc32_hex(bytes) + "\"}";
}

inline std::string manifest_body(const std::string& meta, const std::string& arrays) {
    return "{\n  \"format\": \"tapegrad-checkpoint\",\n  \"version\": 1,\n  \"meta\": {" + meta +
           "},\n  \"arrays\": {" + arrays + "},\n";
}

}  // namespace fuzz
