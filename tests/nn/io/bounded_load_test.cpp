// Loading is memory-safe and bounded (issue 10, item 7): only regular files are read (a FIFO
// would hang, /dev/zero never ends), shapes are checked against the file's real size before
// anything is allocated, array files stay inside the checkpoint, and a manifest's layer sizes
// are checked against its arrays before a model is built.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../fuzz/manifest_support.hpp"
#include "../temp_dir.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/idx.hpp"
#include "nn/io/checkpoint.hpp"
#include "nn/io/model_checkpoint.hpp"

using Catch::Matchers::Contains;
using test_support::TempDir;
namespace fs = std::filesystem;

namespace {

// Runs `load` in a child process with a time limit and, if `address_space` is given, a cap on
// memory, so that a hang or a runaway allocation on a broken build fails the test instead of
// stalling or swapping the machine. The child reports whether `load` threw nn::DataError
// whose message holds `expected`.
bool refuses_within(const std::function<void()>& load, const std::string& expected,
                    [[maybe_unused]] rlim_t address_space = 0) {  // unused under the sanitizers
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        alarm(10);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
        if (address_space) {
            struct rlimit limit {address_space, address_space};
            setrlimit(RLIMIT_AS, &limit);
        }
#endif
        try {
            load();
        } catch (const nn::DataError& e) {
            _exit(std::string(e.what()).find(expected) != std::string::npos ? 0 : 2);
        } catch (...) {
            _exit(3);
        }
        _exit(4);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    INFO("child status " << status << (WIFSIGNALED(status) ? " (killed by a signal: hang or crash)" : ""));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

TEST_CASE("loaders read only regular files: FIFOs and devices are refused, not read forever", "[load][bounded]") {
    TempDir tmp("special");
    const fs::path dir = tmp.path / "model";
    nn::Checkpoint c;
    c.arrays["W"] = xt::xtensor<float, 2>{{1.0f, 2.0f}};
    nn::save_checkpoint(dir, c);

    SECTION("manifest.json is a FIFO") {
        fs::remove(dir / "manifest.json");
        REQUIRE(::mkfifo((dir / "manifest.json").c_str(), 0600) == 0);
        CHECK(refuses_within([&] { nn::load_checkpoint(dir); }, "not a regular file"));
    }
    SECTION("manifest.json is a symlink to /dev/zero") {
        fs::remove(dir / "manifest.json");
        fs::create_symlink("/dev/zero", dir / "manifest.json");
        CHECK(refuses_within([&] { nn::load_checkpoint(dir); }, "not a regular file"));
    }
    SECTION("an array file is a FIFO") {
        fs::remove(dir / "W.npy");
        REQUIRE(::mkfifo((dir / "W.npy").c_str(), 0600) == 0);
        CHECK(refuses_within([&] { nn::load_checkpoint(dir); }, "W.npy"));
    }
    SECTION("a CSV that is a FIFO or /dev/zero") {
        REQUIRE(::mkfifo((tmp.path / "data.csv").c_str(), 0600) == 0);
        CHECK(refuses_within([&] { nn::load_csv_dataset<float>((tmp.path / "data.csv").string()); },
                             "not a regular file"));
        fs::create_symlink("/dev/zero", tmp.path / "zero.csv");
        CHECK(refuses_within([&] { nn::load_csv_dataset<float>((tmp.path / "zero.csv").string()); },
                             "not a regular file"));
    }
}

TEST_CASE("an .npy shape whose element count overflows is refused before any allocation", "[load][bounded]") {
    TempDir tmp("overflow");
    const fs::path dir = tmp.path / "model";
    fs::create_directory(dir);
    // 2^32 x 2^32 floats: 2^64 elements, which wrap to 0 in size_t, exactly the (empty) data:
    // an array of that shape over no memory at all.
    const std::string npy = fuzz::npy_header("<f4", "4294967296, 4294967296");
    write(dir / "W.npy", npy);
    write(dir / "manifest.json", fuzz::manifest_with_crc(fuzz::manifest_body(
                                     "", fuzz::array_entry("W", "<f4", std::size_t(1) << 32, std::size_t(1) << 32, npy))));
    CHECK(refuses_within([&] { nn::load_checkpoint(dir); }, "W.npy", rlim_t(1) << 31));

    // An empty array with a side of 2^63 (xtensor's strides overflow; found by fuzz_npy).
    const std::string empty_npy = fuzz::npy_header("<f4", "0, 9223372036854775808");
    write(dir / "W.npy", empty_npy);
    write(dir / "manifest.json", fuzz::manifest_with_crc(fuzz::manifest_body(
                                     "", fuzz::array_entry("W", "<f4", 0, std::size_t(1) << 63, empty_npy))));
    CHECK(refuses_within([&] { nn::load_checkpoint(dir); }, "W.npy", rlim_t(1) << 31));

    // A shape larger than the data that is there, without overflow.
    const std::string short_npy = fuzz::npy_header("<f4", "100000, 100000") + std::string(16, '\0');
    write(dir / "W.npy", short_npy);
    write(dir / "manifest.json", fuzz::manifest_with_crc(fuzz::manifest_body(
                                     "", fuzz::array_entry("W", "<f4", 100000, 100000, short_npy))));
    CHECK(refuses_within([&] { nn::load_checkpoint(dir); }, "W.npy", rlim_t(1) << 31));
}

TEST_CASE("array files named in a manifest stay inside the checkpoint", "[load][bounded]") {
    TempDir tmp("escape");
    const fs::path dir = tmp.path / "model";
    fs::create_directory(dir);
    nn::Checkpoint outside;
    outside.arrays["secret"] = xt::xtensor<float, 2>{{42.0f}};
    nn::save_checkpoint(tmp.path / "other", outside);
    const std::string npy = test_support::read_file(tmp.path / "other" / "secret.npy");
    for (const std::string name : {"../other/secret", "/tmp/x", "sub/secret", ".hidden"}) {
        write(dir / "manifest.json",
              fuzz::manifest_with_crc(fuzz::manifest_body("", fuzz::array_entry(name, "<f4", 1, 1, npy))));
        INFO(name);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains((dir / "manifest.json").string()) && Contains(name));
    }
}

TEST_CASE("a manifest's layer sizes are checked against its arrays before a model is built", "[load][bounded]") {
    TempDir tmp("layers");
    const fs::path dir = tmp.path / "model";
    // A tiny checkpoint whose manifest claims a 100000-100000-100000 network: 40 GB of float
    // weights if built before checking.
    nn::Checkpoint c;
    c.meta = {{"model", "mlp"}, {"layer_sizes", "100000,100000,100000"}, {"activation", "relu"},
              {"dtype", "float32"}, {"epoch", "1"}, {"optimizer", "sgd"}};
    c.arrays["W1"] = xt::xtensor<float, 2>{{1.0f}};
    c.arrays["b1"] = xt::xtensor<float, 2>{{1.0f}};
    c.arrays["W2"] = xt::xtensor<float, 2>{{1.0f}};
    c.arrays["b2"] = xt::xtensor<float, 2>{{1.0f}};
    nn::save_checkpoint(dir, c);
    CHECK(refuses_within([&] { nn::load_model<float>(dir); }, "W1", rlim_t(1) << 31));
}

TEST_CASE("a manifest with members after its checksum is refused: they would override what it covers",
          "[load][bounded]") {
    TempDir tmp("after_crc");
    nn::Checkpoint ckpt;
    ckpt.meta["epoch"] = "3";
    ckpt.arrays["w"] = xt::xtensor<float, 2>{{1.0f}};
    nn::save_checkpoint(tmp.path / "model", ckpt);
    const fs::path manifest = tmp.path / "model" / "manifest.json";
    std::string text = test_support::read_file(manifest);
    CHECK(nn::load_checkpoint(tmp.path / "model").meta.at("epoch") == "3");
    text.insert(text.rfind('}'), ", \"meta\": {\"epoch\": \"666\"}\n");
    write(manifest, text);
    CHECK_THROWS_WITH(nn::load_checkpoint(tmp.path / "model"), Contains("content after manifest_crc32"));
}
