// nn::load_idx_labels on arbitrary bytes (plain or gzip'd): a DataError or the labels,
// checked against the raw bytes for plain files.
#include <cstdint>
#include <cstring>

#include "fuzz_support.hpp"
#include "nn/data_error.hpp"
#include "nn/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz::write_file("labels.idx", data, size);
    std::vector<std::size_t> labels;
    try {
        labels = nn::load_idx_labels(path);
    } catch (const nn::DataError& e) {
        FUZZ_CHECK(std::strstr(e.what(), path.c_str()) != nullptr);
        return 0;
    }
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;
    FUZZ_CHECK(size >= 8);
    FUZZ_CHECK(data[0] == 0 && data[1] == 0 && data[2] == 8 && data[3] == 1);
    FUZZ_CHECK(labels.size() == size - 8);
    for (std::size_t i = 0; i < labels.size(); ++i) FUZZ_CHECK(labels[i] == data[8 + i]);
    return 0;
}
