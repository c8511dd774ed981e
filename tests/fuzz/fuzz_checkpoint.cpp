// nn::load_checkpoint on an arbitrary manifest.json (the input, with the manifest's own
// CRC32 appended so that edits get past it) beside two fixed, valid array files.
// Result: a DataError naming the manifest or a file, or a checkpoint whose arrays are
// exactly those files' contents. Every tenth input also saves its bytes as metadata keys
// and values and checks they load back unchanged (the manifest's JSON writer and reader), or
// are refused as not UTF-8. Every seventh input is instead an array's name (up to the first
// NUL) and its file's bytes: the harness writes the file under that name when the name is a
// plain file name, and a manifest naming it with the right size and CRC32; the loader must
// refuse any name that would leave the checkpoint directory, and load a valid one exactly.
// Every eleventh input is the whole manifest, its own manifest_crc32 included.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include <xtensor/xnpy.hpp>

#include "fuzz_support.hpp"
#include "manifest_support.hpp"
#include "nn/io/checkpoint.hpp"

namespace {

const xt::xtensor<float, 2> W_value{{1.5f, -2.0f, 0.25f}, {3.0f, 1e-30f, -0.0f}};
const xt::xtensor<double, 2> b_value{{0.1}, {-1e300}};

const std::filesystem::path& fixed_dir() {
    static const std::filesystem::path dir = [] {
        const auto d = fuzz::scratch_dir() / "ckpt";
        std::filesystem::create_directories(d);
        const std::string W = xt::dump_npy(W_value), b = xt::dump_npy(b_value);
        fuzz::write_file("ckpt/W.npy", W.data(), W.size());
        fuzz::write_file("ckpt/b.npy", b.data(), b.size());
        return d;
    }();
    return dir;
}

void round_trip_meta(const std::string& text) {
    nn::Checkpoint c;
    const std::size_t half = text.size() / 2;
    c.meta[text.substr(0, half)] = text.substr(half);
    c.meta["all"] = text;
    const auto dir = fuzz::scratch_dir() / "roundtrip";
    try {
        nn::save_checkpoint(dir, c);
    } catch (const autodiff::Error& e) {
        FUZZ_CHECK(std::strstr(e.what(), "UTF-8") != nullptr);
        return;
    }
    FUZZ_CHECK(nn::load_checkpoint(dir).meta == c.meta);
}

bool plain_file_name(const std::string& name) {
    return !name.empty() && name[0] != '.' && name != "manifest" &&
           name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == std::string::npos;
}

void named_array(const std::string& text) {
    const std::size_t nul = text.find('\0');
    const std::string name = text.substr(0, std::min<std::size_t>(nul, 64));
    const std::string npy = nul == std::string::npos ? xt::dump_npy(W_value) : text.substr(nul + 1);
    const auto dir = fuzz::scratch_dir() / "named" / "ckpt";
    std::error_code ignored;
    std::filesystem::remove_all(dir.parent_path(), ignored);
    std::filesystem::create_directories(dir);
    // A file the name may point at outside the directory: reading it would be the finding.
    fuzz::write_file("named/outside.npy", npy.data(), npy.size());
    if (plain_file_name(name)) fuzz::write_file("named/ckpt/" + name + ".npy", npy.data(), npy.size());
    const std::string manifest =
        fuzz::manifest_with_crc(fuzz::manifest_body("", fuzz::array_entry(name, "<f4", 2, 3, npy)));
    fuzz::write_file("named/ckpt/manifest.json", manifest.data(), manifest.size());
    nn::Checkpoint c;
    try {
        c = nn::load_checkpoint(dir);
    } catch (const nn::DataError& e) {
        FUZZ_CHECK(std::strstr(e.what(), dir.c_str()) != nullptr);
        return;
    }
    FUZZ_CHECK(plain_file_name(name));
    FUZZ_CHECK(c.arrays.size() == 1 && c.arrays.count(name) == 1);
    FUZZ_CHECK(c.array<float>(name).shape(0) == 2 && c.array<float>(name).shape(1) == 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (size % 10 == 3) round_trip_meta(text);
    if (size % 7 == 5) {
        named_array(text);
        return 0;
    }

    const auto& dir = fixed_dir();
    // Every eleventh input is the whole manifest, its manifest_crc32 as the input has it
    // (missing, wrong, duplicated, escaped, followed by more members): refused, or right.
    const std::string manifest = size % 11 == 7 ? text : fuzz::manifest_with_crc(text);
    fuzz::write_file("ckpt/manifest.json", manifest.data(), manifest.size());
    nn::Checkpoint c;
    try {
        c = nn::load_checkpoint(dir);
    } catch (const nn::DataError& e) {
        FUZZ_CHECK(std::strstr(e.what(), dir.c_str()) != nullptr);
        return 0;
    }
    for (const auto& [name, array] : c.arrays) {
        FUZZ_CHECK(name == "W" || name == "b");
        if (name == "W") FUZZ_CHECK(c.array<float>("W") == W_value);
        if (name == "b") FUZZ_CHECK(c.array<double>("b") == b_value);
    }
    return 0;
}
