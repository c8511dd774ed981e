#include "nn/data/idx.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <unistd.h>
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

// The bytes of an IDX file: inflated when it starts with the gzip magic 1f 8b, as they are
// otherwise. zlib's gzread is not used: it reports a stream cut short (its trailer missing)
// as a clean end, and silently drops bytes after the last gzip member.
class IdxBytes {
public:
    IdxBytes(int fd, const std::string& path) : fd_(fd), path_(path) {
        gzip_ = fill_at_least(2) && input_[0] == 0x1f && input_[1] == 0x8b;
        // 16 + MAX_WBITS: a gzip wrapper only, its header and trailer (CRC, length) checked.
        if (gzip_ && inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw DataError(path_ + ": cannot start zlib");
    }
    ~IdxBytes() {
        if (gzip_) inflateEnd(&z_);
    }
    IdxBytes(const IdxBytes&) = delete;
    IdxBytes& operator=(const IdxBytes&) = delete;

    bool gzip() const { return gzip_; }

    // Up to `size` bytes into dst; fewer only at the end of the data.
    std::size_t read(unsigned char* dst, std::size_t size) { return gzip_ ? inflate_some(dst, size) : copy_some(dst, size); }

private:
    // Raw bytes are kept in input_[begin_, end_): gzip's input, or a plain file's next bytes.
    std::size_t buffered() const { return end_ - begin_; }

    // Reads from the file until `count` bytes are buffered or the file ends; false if it ended first.
    bool fill_at_least(std::size_t count) {
        if (begin_ > 0) {  // keep the unread bytes at the front
            std::copy(input_.begin() + std::ptrdiff_t(begin_), input_.begin() + std::ptrdiff_t(end_), input_.begin());
            end_ -= begin_;
            begin_ = 0;
        }
        while (buffered() < count) {
            const ssize_t n = ::read(fd_, input_.data() + end_, input_.size() - end_);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw DataError(path_ + ": read error: " + std::strerror(errno));
            if (n == 0) return false;
            end_ += std::size_t(n);
        }
        return true;
    }

    std::size_t copy_some(unsigned char* dst, std::size_t size) {
        std::size_t got = 0;
        while (got < size && (buffered() > 0 || fill_at_least(1))) {
            const std::size_t n = std::min(size - got, buffered());
            std::memcpy(dst + got, input_.data() + begin_, n);
            begin_ += n;
            got += n;
        }
        return got;
    }

    std::size_t inflate_some(unsigned char* dst, std::size_t size) {
        std::size_t got = 0;
        while (got < size) {
            if (member_ended_ && !start_next_member()) break;
            if (buffered() == 0 && !fill_at_least(1))
                throw DataError(path_ + ": truncated gzip stream: the file ends before the gzip trailer");
            got += inflate_into(dst + got, size - got);
        }
        return got;
    }

    // Inflates buffered input into at most `room` bytes at dst; returns how many it wrote.
    std::size_t inflate_into(unsigned char* dst, std::size_t room) {
        z_.next_in = input_.data() + begin_;
        z_.avail_in = static_cast<uInt>(buffered());
        z_.next_out = dst;
        z_.avail_out = static_cast<uInt>(std::min<std::size_t>(room, 1u << 30));
        const uInt out_before = z_.avail_out;
        const int code = inflate(&z_, Z_NO_FLUSH);
        begin_ = end_ - z_.avail_in;
        if (code == Z_STREAM_END) member_ended_ = true;
        else if (code != Z_OK && code != Z_BUF_ERROR)
            throw DataError(path_ + ": cannot decompress: " + (z_.msg ? z_.msg : zError(code)));
        return out_before - z_.avail_out;
    }

    // After a gzip member: the file ends (false), another member follows (gzip files may be
    // concatenated), or anything else is an error, not ignored.
    bool start_next_member() {
        if (buffered() == 0 && !fill_at_least(1)) return false;
        if (!fill_at_least(2) || input_[begin_] != 0x1f || input_[begin_ + 1] != 0x8b)
            throw DataError(path_ + ": unexpected data after the end of the gzip stream (trailing bytes that are "
                                    "not another gzip member)");
        if (inflateReset(&z_) != Z_OK) throw DataError(path_ + ": cannot restart zlib");
        member_ended_ = false;
        return true;
    }

    int fd_;
    std::string path_;
    std::vector<unsigned char> input_ = std::vector<unsigned char>(std::size_t(1) << 16);
    std::size_t begin_ = 0, end_ = 0;
    bool gzip_ = false;
    bool member_ended_ = false;
    z_stream z_{};
};

void read_exact(IdxBytes& in, unsigned char* dst, std::size_t size, const std::string& path, const std::string& what) {
    const std::size_t got = in.read(dst, size);
    if (got != size) {
        throw DataError(path + ": truncated file: expected " + std::to_string(size) + " bytes of " + what + ", got " +
                        std::to_string(got));
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
    IdxBytes in(file.fd(), path);
    // A gzip stream may announce (and deliver) far more than its size: a 600 KB file can
    // inflate to 600 MB of zeros. Real image data compresses a few-fold at most.
    const std::size_t most_data = !in.gzip() ? max_idx_bytes
                                             : std::min(max_idx_bytes, std::max(file_size, std::size_t(1) << 16) *
                                                                           max_idx_gzip_expansion);

    unsigned char word[4];
    read_exact(in, word, 4, path, "IDX magic number");
    const std::uint32_t magic = big_endian32(word);
    if (magic != expected_magic) {
        throw DataError(path + ": wrong magic number: expected " + hex32(expected_magic) + " (IDX " +
                        kind + "), got " + hex32(magic));
    }
    IdxContents idx;
    std::size_t total = 1;
    for (std::uint32_t d = 0; d < (magic & 0xff); ++d) {
        read_exact(in, word, 4, path, "header (dimension sizes)");
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
        const std::size_t got = in.read(idx.bytes.data() + at, n);
        if (got != n) {
            throw DataError(path + ": truncated file: expected " + std::to_string(total) + " bytes of " + kind +
                            " data, got " + std::to_string(at + got));
        }
    }
    unsigned char extra;
    if (in.read(&extra, 1) != 0) {
        throw DataError(path + ": unexpected data after the " + std::to_string(total) +
                        " bytes the header announces");
    }
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
    TrainTest<T> data{load_fashion_split<T>(dir, "train"), load_fashion_split<T>(dir, "t10k")};
    // Checked now: test images of another size were found only by the evaluation after the
    // first epoch's training (found by an attack).
    if (data.test.features.shape(0) != data.train.features.shape(0))
        throw DataError(dir + ": the test images have " + std::to_string(data.test.features.shape(0)) +
                        " pixels each, the training images " + std::to_string(data.train.features.shape(0)));
    return data;
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
