// nn::parse_csv_dataset on arbitrary text, in double and in float: a DataError naming the
// source, or a data set whose parts agree (one label per example, every label a class,
// every feature finite).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "fuzz_support.hpp"
#include "nn/data/csv.hpp"
#include "nn/data_error.hpp"

namespace {

// In T: a value finite in double may not be in float (1e39), and must then be refused.
template <class T>
void check_parse(const std::uint8_t* data, std::size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    nn::Dataset<T> d;
    try {
        d = nn::parse_csv_dataset<T>(in, "fuzz.csv");
    } catch (const nn::DataError& e) {
        FUZZ_CHECK(std::strstr(e.what(), "fuzz.csv") != nullptr);
        return;
    }
    FUZZ_CHECK(d.size() > 0);
    FUZZ_CHECK(d.features.shape(1) == d.labels.size());
    FUZZ_CHECK(d.features.shape(0) > 0);
    FUZZ_CHECK(d.class_names.size() == d.classes);
    for (std::size_t label : d.labels) FUZZ_CHECK(label < d.classes);
    for (T v : d.features) FUZZ_CHECK(std::isfinite(v));
    // Each example came from a line of the input: there are at most as many as newlines + 1.
    FUZZ_CHECK(d.size() <= std::size_t(std::count(data, data + size, '\n')) + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_parse<double>(data, size);
    check_parse<float>(data, size);
    return 0;
}
