// The .npy reader behind nn::load_checkpoint, on arbitrary bytes, with a manifest whose sizes
// and checksums match the file, so every input reaches the .npy parser. Two kinds of input:
// - first byte below 0xf0: the first two bytes pick the shape (mod 9) and the third the dtype
//   the manifest announces; the rest is the whole file;
// - first byte 0xf0 or above: bytes 1..16 are any 64-bit rows and cols (overflowing products
//   included), byte 17 the dtype; the harness writes NumPy's header for that shape, so it
//   reaches the size checks at once, and the rest of the input is the data after it.
// Result: a DataError naming the file, or the announced shape holding the file's data (never
// more elements than the file holds bytes for).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "fuzz_support.hpp"
#include "manifest_support.hpp"
#include "nn/io/checkpoint.hpp"

namespace {

template <class T>
void check_data(const xt::xtensor<T, 2>& a, const std::string& file) {
    // C order, little-endian, as the manifest's dtype says: the data follows the header
    // (whose length is a 2-byte field in format 1.0, a 4-byte one in 2.0 and 3.0).
    std::string text = file;
    text.erase(std::remove(text.begin(), text.end(), ' '), text.end());  // as the header is read
    if (text.find("True") != std::string::npos || text.find('>') != std::string::npos) return;
    FUZZ_CHECK(file.size() >= 12);
    const auto byte = [&](std::size_t i) { return std::size_t(static_cast<unsigned char>(file[i])); };
    const std::size_t start = file[6] == 1 ? 10 + (byte(8) | byte(9) << 8)
                                           : 12 + (byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24);
    const std::size_t n = a.size() * sizeof(T);
    FUZZ_CHECK(file.size() >= start + n);
    FUZZ_CHECK(n == 0 || std::memcmp(a.data(), file.data() + start, n) == 0);  // an empty array may have no data()
}

std::uint64_t little_endian64(const std::uint8_t* b) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
    return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    std::size_t rows = data[0] % 9, cols = data[1] % 9;
    std::string dtype = (data[2] & 1) ? "<f8" : "<f4";
    std::string npy(reinterpret_cast<const char*>(data + 3), size - 3);
    if (data[0] >= 0xf0) {
        if (size < 18) return 0;
        rows = little_endian64(data + 1);
        cols = little_endian64(data + 9);
        dtype = (data[17] & 1) ? "<f8" : "<f4";
        npy = fuzz::npy_header(dtype, std::to_string(rows) + ", " + std::to_string(cols)) +
              std::string(reinterpret_cast<const char*>(data + 18), size - 18);
    }

    const auto dir = fuzz::scratch_dir() / "npy";
    std::filesystem::create_directories(dir);
    fuzz::write_file("npy/A.npy", npy.data(), npy.size());
    const std::string manifest =
        fuzz::manifest_with_crc(fuzz::manifest_body("", fuzz::array_entry("A", dtype, rows, cols, npy)));
    fuzz::write_file("npy/manifest.json", manifest.data(), manifest.size());

    nn::Checkpoint c;
    try {
        c = nn::load_checkpoint(dir);
    } catch (const nn::DataError& e) {
        FUZZ_CHECK(std::strstr(e.what(), "A.npy") != nullptr);  // the manifest is fine: the .npy is at fault
        return 0;
    }
    FUZZ_CHECK(c.arrays.size() == 1);
    FUZZ_CHECK(rows == 0 || cols <= npy.size() / rows);  // no shape beyond the bytes there
    if (dtype == "<f8") {
        const auto& a = c.array<double>("A");
        FUZZ_CHECK(a.shape(0) == rows && a.shape(1) == cols);
        check_data(a, npy);
    } else {
        const auto& a = c.array<float>("A");
        FUZZ_CHECK(a.shape(0) == rows && a.shape(1) == cols);
        check_data(a, npy);
    }
    return 0;
}
