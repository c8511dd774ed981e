#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <vector>

#include <zlib.h>

#include "nn/data_error.hpp"
#include "nn/data/idx.hpp"
#include "../temp_dir.hpp"

using Catch::Matchers::Contains;
using test_support::TempDir;

namespace {

std::string idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                      const std::vector<unsigned char>& data) {
    std::string out;
    auto put32 = [&](std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
    };
    put32(magic);
    for (auto d : dims) put32(d);
    out.append(data.begin(), data.end());
    return out;
}

std::string write_gzip(const std::string& path, const std::string& content) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, content.data(), static_cast<unsigned>(content.size())) == int(content.size()));
    REQUIRE(gzclose(f) == Z_OK);
    return path;
}

// Three 2x2 images whose pixels are 0, 51, ..., 255 and a few in between.
const std::vector<unsigned char> pixels{0, 51, 102, 255, 1, 2, 3, 4, 128, 129, 254, 7};
const std::string images = idx_bytes(0x803, {3, 2, 2}, pixels);
const std::string labels = idx_bytes(0x801, {3}, {2, 0, 9});

}  // namespace

TEST_CASE("IDX round trip: gzip'd files give pixels/255, one image per column", "[idx]") {
    TempDir tmp("idx");
    const auto img = write_gzip(tmp.file("img.gz"), images);
    const auto lab = write_gzip(tmp.file("lab.gz"), labels);
    const auto data = nn::load_idx_dataset<double>(img, lab, nn::fashion_mnist_class_names());
    REQUIRE(data.features.shape(0) == 4);
    REQUIRE(data.features.shape(1) == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t p = 0; p < 4; ++p) CHECK(data.features(p, i) == pixels[i * 4 + p] / 255.0);
    }
    CHECK(data.labels == std::vector<std::size_t>{2, 0, 9});
    CHECK(data.classes == 10);
    CHECK(data.class_names[9] == "Ankle boot");

    const auto as_float = nn::load_idx_images<float>(img);
    CHECK(as_float(1, 2) == static_cast<float>(129 / 255.0));
}

TEST_CASE("IDX: plain (uncompressed) files read the same", "[idx]") {
    TempDir tmp("idx");
    const auto X = nn::load_idx_images<double>(tmp.write("img", images));
    CHECK(X(3, 0) == 1.0);
    CHECK(nn::load_idx_labels(tmp.write("lab", labels)) == std::vector<std::size_t>{2, 0, 9});
}

TEST_CASE("IDX errors name the file and what is wrong", "[idx]") {
    TempDir tmp("idx");
    SECTION("missing file") {
        const auto path = tmp.file("nope.gz");
        CHECK_THROWS_WITH(nn::load_idx_labels(path), Contains(path) && Contains("no such file"));
    }
    SECTION("wrong magic number, expected and got in hex") {
        const auto path = write_gzip(tmp.file("labels-as-images.gz"), labels);
        CHECK_THROWS_WITH(nn::load_idx_images<float>(path),
                          Contains(path) && Contains("expected 0x00000803") && Contains("got 0x00000801"));
    }
    SECTION("truncated data: expected vs got bytes") {
        const auto cut = images.substr(0, images.size() - 4);  // header says 3 images, 2 present
        const auto path = write_gzip(tmp.file("short.gz"), cut);
        CHECK_THROWS_WITH(nn::load_idx_images<float>(path),
                          Contains(path) && Contains("truncated") && Contains("expected 12 bytes") &&
                              Contains("got 8"));
    }
    SECTION("truncated header") {
        const auto path = tmp.write("hdr", images.substr(0, 6));
        CHECK_THROWS_WITH(nn::load_idx_images<float>(path), Contains(path) && Contains("truncated"));
    }
    SECTION("gzip stream cut short") {
        const auto whole = test_support::read_file(write_gzip(tmp.file("whole.gz"), images));
        const auto path = tmp.write("cut.gz", whole.substr(0, whole.size() - 10));
        CHECK_THROWS_AS(nn::load_idx_images<float>(path), nn::DataError);
        CHECK_THROWS_WITH(nn::load_idx_images<float>(path), Contains(path));
    }
    SECTION("trailing garbage after the data") {
        const auto path = tmp.write("long", labels + "x");
        CHECK_THROWS_WITH(nn::load_idx_labels(path), Contains(path) && Contains("unexpected data"));
    }
    SECTION("images and labels disagree on the count") {
        const auto img = tmp.write("img", images);
        const auto lab = tmp.write("lab", idx_bytes(0x801, {2}, {1, 2}));
        CHECK_THROWS_WITH(nn::load_idx_dataset<float>(img, lab, {"a", "b", "c"}),
                          Contains(img) && Contains(lab) && Contains("3 images") && Contains("2 labels"));
    }
    SECTION("label out of range") {
        const auto img = tmp.write("img", images);
        const auto lab = tmp.write("lab", labels);  // holds a 9
        CHECK_THROWS_WITH(nn::load_idx_dataset<float>(img, lab, {"a", "b", "c"}),
                          Contains(lab) && Contains("label 9") && Contains("3 classes"));
    }
    SECTION("Fashion-MNIST directory without the files points at the package and --data") {
        CHECK_THROWS_WITH(nn::load_fashion_mnist<float>(tmp.path.string()),
                          Contains(tmp.path.string()) && Contains("dataset-fashion-mnist") &&
                              Contains("--data DIR"));
    }
}

TEST_CASE("Fashion-MNIST test split from Debian's dataset-fashion-mnist", "[idx][fashion]") {
    if (!std::filesystem::exists(nn::fashion_mnist_debian_dir)) {
        WARN("skipped: " << nn::fashion_mnist_debian_dir << " absent (apt-get install dataset-fashion-mnist)");
        return;
    }
    const auto test = nn::load_fashion_mnist_test<float>();
    REQUIRE(test.features.shape(0) == 784);
    REQUIRE(test.features.shape(1) == 10000);
    REQUIRE(test.size() == 10000);
    CHECK(std::vector<std::size_t>(test.labels.begin(), test.labels.begin() + 10) ==
          std::vector<std::size_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
    double first_image_sum = 0;
    for (std::size_t p = 0; p < 784; ++p) first_image_sum += test.features(p, 0) * 255.0;
    CHECK_THAT(first_image_sum, Catch::Matchers::WithinAbs(33456.0, 1e-3));  // pixel bytes, stored as float byte/255
    CHECK(test.class_names[test.labels[0]] == "Ankle boot");
}

TEST_CASE("IDX: decompression is bounded, a small gzip cannot expand to gigabytes", "[idx][bounded]") {
    // 64 MB of zero pixels announced and delivered, gzip'd to about 64 KB: a 1000-fold
    // expansion no image data shows. Refused before the data is held in memory.
    TempDir tmp("idx");
    const std::string header = idx_bytes(0x803, {65536, 32, 32}, {});
    const auto path = tmp.file("bomb-images-idx3-ubyte.gz");
    gzFile f = gzopen(path.c_str(), "wb9");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, header.data(), static_cast<unsigned>(header.size())) == int(header.size()));
    const std::string zeros(1 << 20, '\0');
    for (int i = 0; i < 64; ++i) REQUIRE(gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size())) == int(zeros.size()));
    REQUIRE(gzclose(f) == Z_OK);
    REQUIRE(std::filesystem::file_size(path) < 200000);
    CHECK_THROWS_WITH(nn::load_idx_images<float>(path), Contains(path) && Contains("expands"));

    // The same count of real-looking pixels (incompressible) in a plain file loads.
    const std::string plain = idx_bytes(0x803, {4, 2, 2}, std::vector<unsigned char>(16, 7));
    const auto plain_path = tmp.write("ok-images-idx3-ubyte", plain);
    CHECK(nn::load_idx_images<float>(plain_path).shape(1) == 4);
}

TEST_CASE("IDX: a FIFO or a device is refused, not read", "[idx][bounded]") {
    TempDir tmp("idx");
    std::filesystem::create_symlink("/dev/zero", tmp.path / "zero-images");
    CHECK_THROWS_WITH(nn::load_idx_images<float>(tmp.file("zero-images")), Contains("zero-images"));
}

TEST_CASE("IDX: a gzip file cut anywhere in its 8-byte trailer or the end of its data is truncated", "[idx][gzip]") {
    // zlib reports a stream that stops early as Z_BUF_ERROR with a read of 0 bytes, which
    // looked like a clean end once the announced data had arrived.
    TempDir tmp("idx");
    const auto whole = test_support::read_file(write_gzip(tmp.file("whole.gz"), labels));
    CHECK(nn::load_idx_labels(tmp.file("whole.gz")) == std::vector<std::size_t>{2, 0, 9});
    for (std::size_t cut = 1; cut <= 9; ++cut) {
        CAPTURE(cut);
        const auto path = tmp.write("cut" + std::to_string(cut) + ".gz", whole.substr(0, whole.size() - cut));
        CHECK_THROWS_WITH(nn::load_idx_labels(path), Contains(path) && Contains("truncated"));
    }
}

TEST_CASE("IDX: bytes after the gzip stream are refused; a second gzip member is read on", "[idx][gzip]") {
    // zlib's gzread dropped whatever followed the last member without a word.
    TempDir tmp("idx");
    const auto whole = test_support::read_file(write_gzip(tmp.file("whole.gz"), labels));
    for (const std::string& garbage : {std::string("x"), std::string("garbage"), std::string(3, '\0')}) {
        CAPTURE(garbage.size());
        const auto path = tmp.write("garbage.gz", whole + garbage);
        CHECK_THROWS_WITH(nn::load_idx_labels(path),
                          Contains(path) && Contains("unexpected data after the end of the gzip stream"));
    }
    // gzip files may be concatenated (cat a.gz b.gz): the header in one member, the data in the next.
    const auto first = test_support::read_file(write_gzip(tmp.file("head.gz"), labels.substr(0, 6)));
    const auto second = test_support::read_file(write_gzip(tmp.file("tail.gz"), labels.substr(6)));
    CHECK(nn::load_idx_labels(tmp.write("two.gz", first + second)) == std::vector<std::size_t>{2, 0, 9});
}

// Found by an attack: test images of another size than the training images were found only
// by the evaluation after a whole epoch of training.
TEST_CASE("Fashion-MNIST-format files whose test images differ in size from the training images are refused at load", "[idx][fashion]") {
    TempDir tmp("fashion_sizes");
    const std::string dir = tmp.path.string();
    write_gzip(dir + "/train-images-idx3-ubyte.gz", images);  // 2x2
    write_gzip(dir + "/train-labels-idx1-ubyte.gz", labels);
    write_gzip(dir + "/t10k-images-idx3-ubyte.gz", idx_bytes(0x803, {1, 3, 3}, std::vector<unsigned char>(9, 1)));
    write_gzip(dir + "/t10k-labels-idx1-ubyte.gz", idx_bytes(0x801, {1}, {4}));
    REQUIRE_THROWS_WITH(nn::load_fashion_mnist<double>(dir), Contains("the test images have 9 pixels each, the training images 4"));
}
