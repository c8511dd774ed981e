#include "nn/data/idx.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <zlib.h>

#include "nn/data_error.hpp"
#include "nn/io/regular_file.hpp"

namespace nn {
namespace {

constexpr std::uint32_t images_magic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t labels_magic = 0x00000801;  // unsigned bytes, 1 dimension
constexpr std::size_t max_idx_bytes = max_idx_data_bytes;

std::string hex32(std::uint32_t v) {
    char buf[11];
    std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
    return buf;
}

struct GzCloser {
    void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `size` bytes; returns how many arrived. gzread checks the first two bytes
// for the gzip magic 1f 8b and passes any other file through unchanged, so gzip'd and
// plain IDX files share this one path. A damaged gzip stream is an error, not a short read.
std::size_t read_some(gzFile f, unsigned char* dst, std::size_t size, const std::string& path) {
    std::size_t got = 0;
    while (got < size) {
        // gzread takes an unsigned count: feed it in chunks well below that limit.
        const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(size - got, 1u << 30));
        const int n = gzread(f, dst + got, chunk);
        if (n < 0) {
            int code = 0;
            throw DataError(path + ": cannot decompress: " + gzerror(f, &code));
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    return got;
}

// Why a read came up short: a gzip stream that stops mid-way says so, a plain file just ends.
std::string eof_reason(gzFile f) {
    int code = 0;
    const char* msg = gzerror(f, &code);
    return code == Z_OK ? std::string() : std::string(" (gzip: ") + msg + ")";
}

void read_exact(gzFile f, unsigned char* dst, std::size_t size, const std::string& path,
                const std::string& what) {
    const std::size_t got = read_some(f, dst, size, path);
    if (got != size) {
        throw DataError(path + ": truncated file: expected " + std::to_string(size) +
                        " bytes of " + what + ", got " + std::to_string(got) + eof_reason(f));
    }
}

// gzread reports a gzip stream that stops early (a trailer cut off, even when all the data
// arrived) as a read of 0 bytes, the same as a clean end: only gzerror tells them apart.
void require_complete_stream(gzFile f, const std::string& path) {
    int code = Z_OK;
    const char* message = gzerror(f, &code);
    if (code != Z_OK) {
        throw DataError(path + ": truncated gzip stream: the data ends before the gzip trailer (zlib: " + message +
                        ")");
    }
}

std::uint32_t big_endian32(const unsigned char* b) {
    return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) |
           std::uint32_t(b[3]);
}

struct IdxContents {
    std::vector<std::size_t> dims;
    std::vector<unsigned char> bytes;
};

IdxContents read_idx(const std::string& path, std::uint32_t expected_magic, const char* kind) {
    RegularFile file(path, std::string("IDX ") + kind + " file");
    const std::size_t file_size = file.size();
    GzHandle f(gzdopen(file.fd(), "rb"));
    if (!f) throw DataError(path + ": cannot open for reading");
    file.release();  // gzclose closes it now
    // A gzip stream may announce (and deliver) far more than its size: a 600 KB file can
    // inflate to 600 MB of zeros. Real image data compresses a few-fold at most.
    const std::size_t most_data = gzdirect(f.get()) ? max_idx_bytes
                                                     : std::min(max_idx_bytes, std::max(file_size, std::size_t(1) << 16) *
                                                                                   max_idx_gzip_expansion);

    unsigned char word[4];
    read_exact(f.get(), word, 4, path, "IDX magic number");
    const std::uint32_t magic = big_endian32(word);
    if (magic != expected_magic) {
        throw DataError(path + ": wrong magic number: expected " + hex32(expected_magic) + " (IDX " +
                        kind + "), got " + hex32(magic));
    }
    IdxContents idx;
    std::size_t total = 1;
    for (std::uint32_t d = 0; d < (magic & 0xff); ++d) {
        read_exact(f.get(), word, 4, path, "header (dimension sizes)");
        idx.dims.push_back(big_endian32(word));
        // A corrupted header could announce petabytes: refuse before allocating.
        if (idx.dims.back() != 0 && total > max_idx_bytes / idx.dims.back()) {
            throw DataError(path + ": header announces more than " + std::to_string(max_idx_bytes) +
                            " bytes of data: the header is corrupted");
        }
        total *= idx.dims.back();
    }
    if (total > most_data) {
        throw DataError(path + ": the header announces " + std::to_string(total) + " bytes of data, which " +
                        std::to_string(file_size) + " bytes of gzip would only give if it expands more than " +
                        std::to_string(max_idx_gzip_expansion) + "-fold (a decompression bomb?)");
    }
    // Grow with the data that actually arrives: a corrupted header announcing gigabytes in
    // a short file is reported as truncated instead of allocating the gigabytes first.
    constexpr std::size_t chunk = std::size_t(1) << 24;
    while (idx.bytes.size() < total) {
        const std::size_t at = idx.bytes.size(), n = std::min(chunk, total - at);
        idx.bytes.resize(at + n);
        const std::size_t got = read_some(f.get(), idx.bytes.data() + at, n, path);
        if (got != n) {
            throw DataError(path + ": truncated file: expected " + std::to_string(total) + " bytes of " + kind +
                            " data, got " + std::to_string(at + got) + eof_reason(f.get()));
        }
    }
    unsigned char extra;
    if (read_some(f.get(), &extra, 1, path) != 0) {
        throw DataError(path + ": unexpected data after the " + std::to_string(total) +
                        " bytes the header announces");
    }
    require_complete_stream(f.get(), path);
    return idx;
}

}  // namespace

template <class T>
xt::xtensor<T, 2> load_idx_images(const std::string& path) {
    const IdxContents idx = read_idx(path, images_magic, "images");
    const std::size_t count = idx.dims[0];
    const std::size_t pixels = idx.dims[1] * idx.dims[2];
    // Else a header of 0-pixel images could announce billions of them with no data at all.
    if (pixels == 0) {
        throw DataError(path + ": images of " + std::to_string(idx.dims[1]) + "x" + std::to_string(idx.dims[2]) +
                        " pixels: the header is corrupted");
    }
    // 256 possible values: scale each once, in double, like NumPy's X / 255.
    std::array<T, 256> scaled;
    for (int p = 0; p < 256; ++p) scaled[p] = static_cast<T>(p / 255.0);

    // The file stores image after image; we want one image per column.
    xt::xtensor<T, 2> X({pixels, count});
    for (std::size_t i = 0; i < count; ++i) {
        const unsigned char* image = idx.bytes.data() + i * pixels;
        for (std::size_t p = 0; p < pixels; ++p) X(p, i) = scaled[image[p]];
    }
    return X;
}

std::vector<std::size_t> load_idx_labels(const std::string& path) {
    const IdxContents idx = read_idx(path, labels_magic, "labels");
    return std::vector<std::size_t>(idx.bytes.begin(), idx.bytes.end());
}

template <class T>
Dataset<T> load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                            const std::vector<std::string>& class_names) {
    Dataset<T> data;
    data.features = load_idx_images<T>(images_path);
    data.labels = load_idx_labels(labels_path);
    data.classes = class_names.size();
    data.class_names = class_names;
    if (data.features.shape(1) != data.labels.size()) {
        throw DataError(images_path + " holds " + std::to_string(data.features.shape(1)) +
                        " images but " + labels_path + " holds " +
                        std::to_string(data.labels.size()) + " labels");
    }
    for (std::size_t i = 0; i < data.labels.size(); ++i) {
        if (data.labels[i] >= data.classes) {
            throw DataError(labels_path + ": label " + std::to_string(data.labels[i]) +
                            " of example " + std::to_string(i) + " is out of range (" +
                            std::to_string(data.classes) + " classes)");
        }
    }
    return data;
}

const std::vector<std::string>& fashion_mnist_class_names() {
    static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};
    return names;
}

namespace {

// Debian ships the files gzip'd; a plain copy (gunzip'd by hand) is accepted too.
std::string fashion_file(const std::string& dir, const std::string& base) {
    const std::filesystem::path d(dir);
    for (const std::string& name : {base + ".gz", base}) {
        if (std::filesystem::is_regular_file(d / name)) return (d / name).string();
    }
    throw DataError("Fashion-MNIST not found: " + (d / (base + ".gz")).string() +
                    " does not exist. Install the Debian package dataset-fashion-mnist "
                    "(apt-get install dataset-fashion-mnist, which fills " +
                    fashion_mnist_debian_dir +
                    ") or pass --data DIR naming a directory that holds the four IDX files");
}

template <class T>
Dataset<T> load_fashion_split(const std::string& dir, const std::string& split) {
    // Look up both files before reading either, so a missing one fails fast.
    const std::string images = fashion_file(dir, split + "-images-idx3-ubyte");
    const std::string labels = fashion_file(dir, split + "-labels-idx1-ubyte");
    return load_idx_dataset<T>(images, labels, fashion_mnist_class_names());
}

}  // namespace

template <class T>
TrainTest<T> load_fashion_mnist(const std::string& dir) {
    return {load_fashion_split<T>(dir, "train"), load_fashion_split<T>(dir, "t10k")};
}

template <class T>
Dataset<T> load_fashion_mnist_test(const std::string& dir) {
    return load_fashion_split<T>(dir, "t10k");
}

#define NN_IDX_INSTANTIATE(T)                                                                  \
    template xt::xtensor<T, 2> load_idx_images<T>(const std::string&);                         \
    template Dataset<T> load_idx_dataset<T>(const std::string&, const std::string&,            \
                                            const std::vector<std::string>&);                  \
    template TrainTest<T> load_fashion_mnist<T>(const std::string&);                           \
    template Dataset<T> load_fashion_mnist_test<T>(const std::string&);
NN_IDX_INSTANTIATE(float)
NN_IDX_INSTANTIATE(double)
#undef NN_IDX_INSTANTIATE

}  // namespace nn
