#include "nn/io/npy_matrix.hpp"

#include <algorithm>
#include <cstring>
#include <regex>
#include <stdexcept>

#include <xtensor/xnpy.hpp>

#include "autodiff/matrix.hpp"
#include "nn/data_error.hpp"

// The dtypes are named as NumPy names them on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy_matrix.cpp assumes little-endian");

namespace nn {
namespace {

std::string shape_text(std::size_t rows, std::size_t cols) {
    return std::to_string(rows) + "x" + std::to_string(cols);
}

struct NpyLayout {
    std::size_t data_start = 0;
    bool fortran_order = false;  // column after column, as NumPy saves a transposed array
};

// Where the data starts, after checking what xt::load_npy (xtensor 0.24) would trust: it reads
// the header length from signed chars, allocates that length before reading, indexes empty
// strings on a malformed dict, and allocates whatever shape the header announces. Accepted:
// the header NumPy writes for a 2-d array of this dtype and this shape, then exactly its data.
template <class T>
NpyLayout check_npy_header(const std::string& bytes, std::size_t rows, std::size_t cols) {
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error("no .npy magic");
    const auto major = static_cast<unsigned char>(bytes[6]);
    if (major < 1 || major > 3) throw std::runtime_error("unsupported .npy version " + std::to_string(major));
    const std::size_t width = major == 1 ? 2 : 4;
    if (bytes.size() < 8 + width) throw std::runtime_error("truncated header");
    std::size_t length = 0;
    for (std::size_t i = 0; i < width; ++i) length |= std::size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    const std::size_t data_start = 8 + width + length;
    if (data_start > bytes.size()) throw std::runtime_error("header longer than the file");
    std::string header = bytes.substr(8 + width, length);
    header.erase(std::remove(header.begin(), header.end(), ' '), header.end());
    static const std::regex numpy_2d(R"(\{'descr':'([<|]f[48])','fortran_order':(True|False),'shape':\((\d{1,19}),(\d{1,19}),?\),?\}\n)");
    std::smatch m;
    if (!std::regex_match(header, m, numpy_2d)) throw std::runtime_error("not the header of a 2-d float array");
    if (m[1].str().substr(1) != std::string(npy_dtype_name<T>()).substr(1)) throw std::runtime_error("dtype " + m[1].str());
    if (m[3].str() != std::to_string(rows) || m[4].str() != std::to_string(cols)) {
        throw std::runtime_error("holds a " + m[3].str() + "x" + m[4].str() + " array but the manifest says " +
                                 shape_text(rows, cols));
    }
    // An empty array holds no data to bound its other side, and xtensor's strides overflow for
    // sides near 2^63 (found by fuzz_npy): sides of an empty array stay below 2^32.
    if ((rows == 0 || cols == 0) && std::max(rows, cols) > (std::size_t(1) << 32)) {
        throw std::runtime_error("an empty " + shape_text(rows, cols) + " array: not a plausible shape");
    }
    // rows * cols * sizeof(T) may overflow: compare by division against the data really there.
    const std::size_t data_bytes = bytes.size() - data_start;
    const std::size_t elements = data_bytes / sizeof(T);
    const bool fits = rows == 0 || cols == 0 ? data_bytes == 0
                                             : data_bytes % sizeof(T) == 0 && elements % rows == 0 && elements / rows == cols;
    if (!fits) {
        throw std::runtime_error("holds " + std::to_string(data_bytes) + " bytes of data, not the " +
                                 shape_text(rows, cols) + " " + npy_dtype_name<T>() + " array its header announces");
    }
    return {data_start, m[2].str() == "True"};
}

}  // namespace

template <class T>
std::string npy_bytes(const xt::xtensor<T, 2>& a) {
    return xt::dump_npy(a);
}

template <class T>
xt::xtensor<T, 2> parse_npy_matrix(const std::string& bytes, const std::string& file, std::size_t rows,
                                   std::size_t cols) {
    NpyLayout layout;
    try {
        layout = check_npy_header<T>(bytes, rows, cols);
    } catch (const std::exception& e) {
        throw DataError(file + ": not a valid " + npy_dtype_name<T>() + " .npy matrix: " + e.what());
    }
    // Checked above: the data is exactly rows x cols elements, so this allocation is bounded
    // by the file's size. Little-endian, as checked.
    xt::xtensor<T, 2> result(std::array<std::size_t, 2>{rows, cols});
    const char* data = bytes.data() + layout.data_start;
    if (!layout.fortran_order) {
        if (result.size() > 0) std::memcpy(result.data(), data, result.size() * sizeof(T));
    } else {
        for (std::size_t c = 0; c < cols; ++c)
            for (std::size_t r = 0; r < rows; ++r) std::memcpy(&result(r, c), data + (c * rows + r) * sizeof(T), sizeof(T));
    }
    const std::string at = autodiff::first_non_finite(result);
    if (!at.empty()) {
        throw DataError(file + ": not finite: " + at +
                        " (saved from a diverged run? tapegrad does not load such weights)");
    }
    return result;
}

template std::string npy_bytes<float>(const xt::xtensor<float, 2>&);
template std::string npy_bytes<double>(const xt::xtensor<double, 2>&);
template xt::xtensor<float, 2> parse_npy_matrix<float>(const std::string&, const std::string&, std::size_t, std::size_t);
template xt::xtensor<double, 2> parse_npy_matrix<double>(const std::string&, const std::string&, std::size_t, std::size_t);

}  // namespace nn
