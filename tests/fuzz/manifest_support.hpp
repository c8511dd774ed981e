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

// `s` as the inside of a JSON string: any name, quotes and control characters included.
inline std::string json_escaped(const std::string& s) {
    std::string out;
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[7];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

inline std::string array_entry(const std::string& name, const std::string& dtype, std::size_t rows,
                               std::size_t cols, const std::string& bytes) {
    const std::string quoted = json_escaped(name);
    return "\"" + quoted + "\": {\"file\": \"" + quoted + ".npy\", \"dtype\": \"" + dtype + "\", \"shape\": [" +
           std::to_string(rows) + ", " + std::to_string(cols) + "], \"bytes\": " + std::to_string(bytes.size()) +
           ", \"crc32\": \"" + crc32_hex(bytes) + "\"}";
}

// NumPy's header of a 2-d array of `shape` ("rows, cols", any digits): magic, version 1.0,
// length, dict padded to 64 bytes. The data goes after it.
inline std::string npy_header(const std::string& dtype, const std::string& shape) {
    std::string dict = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': (" + shape + "), }";
    while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
    dict += '\n';
    std::string out = "\x93NUMPY\x01";
    out += '\0';
    out += static_cast<char>(dict.size() & 0xff);
    out += static_cast<char>(dict.size() >> 8);
    return out + dict;
}

inline std::string manifest_body(const std::string& meta, const std::string& arrays) {
    return "{\n  \"format\": \"tapegrad-checkpoint\",\n  \"version\": 1,\n  \"meta\": {" + meta +
           "},\n  \"arrays\": {" + arrays + "},\n";
}

}  // namespace fuzz
