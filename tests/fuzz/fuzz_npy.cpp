// The .npy reader behind nn::load_checkpoint, on arbitrary bytes. The first two bytes pick
// the shape and the third the dtype the manifest announces; the rest is the file, with a
// manifest whose sizes and checksums match it, so every input reaches the .npy parser.
// Result: a DataError naming the file, or the announced shape holding the file's data.
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
    FUZZ_CHECK(std::memcmp(a.data(), file.data() + start, n) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const std::size_t rows = data[0] % 9, cols = data[1] % 9;
    const std::string dtype = (data[2] & 1) ? "<f8" : "<f4";
    const std::string npy(reinterpret_cast<const char*>(data + 3), size - 3);

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
