// nn::load_checkpoint on an arbitrary manifest.json (the input, with the manifest's own
// CRC32 appended so that edits get past it) beside two fixed, valid array files.
// Result: a DataError naming the manifest or a file, or a checkpoint whose arrays are
// exactly those files' contents. Every tenth input also saves its bytes as metadata keys
// and values and checks they load back unchanged (the manifest's JSON writer and reader).
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
    nn::save_checkpoint(dir, c);
    FUZZ_CHECK(nn::load_checkpoint(dir).meta == c.meta);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (size % 10 == 3) round_trip_meta(text);

    const auto& dir = fixed_dir();
    const std::string manifest = fuzz::manifest_with_crc(text);
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
