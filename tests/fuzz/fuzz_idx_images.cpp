// nn::load_idx_images on arbitrary bytes (plain or gzip'd): a DataError or a matrix whose
// every pixel is the file's byte / 255, checked against the raw bytes for plain files.
#include <cstdint>
#include <cstring>

#include "fuzz_support.hpp"
#include "nn/data_error.hpp"
#include "nn/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz::write_file("images.idx", data, size);
    xt::xtensor<float, 2> X;
    try {
        X = nn::load_idx_images<float>(path);
    } catch (const nn::DataError& e) {
        FUZZ_CHECK(std::strstr(e.what(), path.c_str()) != nullptr);  // names the file
        return 0;
    }
    const bool gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (gzipped) return 0;
    // Plain: magic, three big-endian sizes, then count images of rows*cols bytes, nothing more.
    FUZZ_CHECK(size >= 16);
    auto be = [&](std::size_t at) {
        return (std::uint32_t(data[at]) << 24) | (std::uint32_t(data[at + 1]) << 16) |
               (std::uint32_t(data[at + 2]) << 8) | std::uint32_t(data[at + 3]);
    };
    FUZZ_CHECK(be(0) == 0x00000803);
    const std::size_t count = be(4), pixels = std::size_t(be(8)) * be(12);
    FUZZ_CHECK(X.shape(0) == pixels && X.shape(1) == count);
    FUZZ_CHECK(size == 16 + count * pixels);
    for (std::size_t i = 0; i < count; ++i)
        for (std::size_t p = 0; p < pixels; ++p)
            FUZZ_CHECK(X(p, i) == static_cast<float>(data[16 + i * pixels + p] / 255.0));
    return 0;
}
