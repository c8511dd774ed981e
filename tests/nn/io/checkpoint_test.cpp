#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <atomic>
#include <thread>

#include "nn/io/checkpoint.hpp"
#include "../temp_dir.hpp"
#include "killed_save.hpp"

using Catch::Matchers::Contains;
using test_support::read_file;
using test_support::TempDir;
namespace fs = std::filesystem;

namespace {

// Random values plus the awkward ones a text format would mangle.
template <class T>
xt::xtensor<T, 2> awkward_matrix(std::size_t rows, std::size_t cols, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> normal;
    xt::xtensor<T, 2> a({rows, cols});
    for (auto& v : a) v = static_cast<T>(normal(gen));
    const T specials[] = {T(-0.0), std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::max(),
                          std::numeric_limits<T>::lowest(), T(1) / T(3)};
    std::copy(std::begin(specials), std::end(specials), a.begin());
    return a;
}

template <class T>
bool same_bits(const xt::xtensor<T, 2>& a, const xt::xtensor<T, 2>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

nn::Checkpoint sample_checkpoint() {
    nn::Checkpoint c;
    c.meta = {{"layers", "784,128,10"}, {"activation", "relu"}, {"epoch", "7"},
              {"note", "quotes \" backslash \\ newline\n tab\t utf-8 \xc3\xa9"}};
    c.arrays["W1"] = awkward_matrix<float>(5, 7, 1);
    c.arrays["b1"] = awkward_matrix<float>(5, 1, 2);
    c.arrays["W2.double"] = awkward_matrix<double>(3, 5, 3);
    return c;
}

void overwrite_byte(const fs::path& file, std::streamoff at) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x01));
}

std::size_t entries_in(const fs::path& dir) {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("checkpoint round-trips float and double arrays bit for bit, and the metadata", "[checkpoint]") {
    TempDir tmp("ckpt");
    const auto dir = tmp.path / "model";
    const auto saved = sample_checkpoint();
    nn::save_checkpoint(dir, saved);

    CHECK(fs::exists(dir / "manifest.json"));
    CHECK(fs::exists(dir / "W1.npy"));
    const auto loaded = nn::load_checkpoint(dir);
    CHECK(loaded.meta == saved.meta);
    REQUIRE(loaded.arrays.size() == 3);
    CHECK(same_bits(loaded.array<float>("W1"), saved.array<float>("W1")));
    CHECK(same_bits(loaded.array<float>("b1"), saved.array<float>("b1")));
    CHECK(same_bits(loaded.array<double>("W2.double"), saved.array<double>("W2.double")));
    CHECK_THROWS_WITH(loaded.array<double>("W1"), Contains("W1") && Contains("float32"));
    CHECK_THROWS_WITH(loaded.array<float>("W9"), Contains("W9"));
    CHECK(entries_in(tmp.path) == 1);  // no temporary directory left beside it
}

TEST_CASE("a damaged checkpoint is rejected, naming the file", "[checkpoint]") {
    TempDir tmp("ckpt");
    const auto dir = tmp.path / "model";
    nn::save_checkpoint(dir, sample_checkpoint());
    const auto w1 = dir / "W1.npy";
    const auto manifest = dir / "manifest.json";

    SECTION("a flipped byte in the data") {
        overwrite_byte(w1, static_cast<std::streamoff>(fs::file_size(w1) - 3));
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(w1.string()) && Contains("corrupted"));
    }
    SECTION("a flipped byte in the .npy header") {
        overwrite_byte(w1, 20);
        CHECK_THROWS_AS(nn::load_checkpoint(dir), nn::DataError);
    }
    SECTION("a truncated tail") {
        fs::resize_file(w1, fs::file_size(w1) - 4);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(w1.string()) && Contains("truncated"));
    }
    SECTION("a missing array file") {
        fs::remove(w1);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(w1.string()) && Contains("missing"));
    }
    SECTION("a missing manifest") {
        fs::remove(manifest);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()));
    }
    SECTION("a manifest cut short") {
        const auto text = read_file(manifest);
        std::ofstream(manifest, std::ios::binary | std::ios::trunc) << text.substr(0, text.size() / 2);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("malformed"));
    }
    SECTION("a manifest that is not JSON") {
        std::ofstream(manifest, std::ios::trunc) << "format = tapegrad\n";
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("malformed"));
    }
    SECTION("a manifest from a future version") {
        auto text = read_file(manifest);
        const auto at = text.find("\"version\": 1");
        REQUIRE(at != std::string::npos);
        text.replace(at, 12, "\"version\": 2");
        std::ofstream(manifest, std::ios::binary | std::ios::trunc) << text;
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("version 2"));
    }
    SECTION("a manifest pointing outside the checkpoint") {
        auto text = read_file(manifest);
        const auto at = text.find("\"W1.npy\"");
        REQUIRE(at != std::string::npos);
        text.replace(at, 8, "\"../W1.npy\"");
        std::ofstream(manifest, std::ios::binary | std::ios::trunc) << text;
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("../W1.npy"));
    }
    SECTION("no checkpoint at all") {
        CHECK_THROWS_WITH(nn::load_checkpoint(tmp.path / "other"), Contains("other"));
    }
}

TEST_CASE("a second save replaces the first as a whole", "[checkpoint]") {
    TempDir tmp("ckpt");
    const auto dir = tmp.path / "model";
    nn::Checkpoint first;
    first.meta["epoch"] = "1";
    first.arrays["old_only"] = xt::xtensor<double, 2>{{1.0, 2.0}};
    first.arrays["W"] = xt::xtensor<float, 2>{{1.0f}};
    nn::save_checkpoint(dir, first);

    nn::Checkpoint second;
    second.meta["epoch"] = "2";
    second.arrays["W"] = xt::xtensor<float, 2>{{2.0f, 3.0f}};
    nn::save_checkpoint(dir, second);

    const auto loaded = nn::load_checkpoint(dir);
    CHECK(loaded.meta.at("epoch") == "2");
    CHECK(loaded.arrays.count("old_only") == 0);
    CHECK_FALSE(fs::exists(dir / "old_only.npy"));  // nothing of the first is mixed in
    CHECK(same_bits(loaded.array<float>("W"), second.array<float>("W")));
    CHECK(entries_in(tmp.path) == 1);  // the old copy and the temp directory are gone
}

TEST_CASE("save_checkpoint refuses what it must not do, and changes nothing", "[checkpoint]") {
    TempDir tmp("ckpt");
    SECTION("replace a directory that is not a checkpoint") {
        const auto dir = tmp.path / "photos";
        fs::create_directory(dir);
        tmp.write("photos/cat.jpg", "meow");
        CHECK_THROWS_WITH(nn::save_checkpoint(dir, sample_checkpoint()),
                          Contains(dir.string()) && Contains("not a checkpoint"));
        CHECK(read_file(dir / "cat.jpg") == "meow");
    }
    SECTION("an array name that is not a plain file name") {
        nn::Checkpoint bad;
        bad.arrays["../escape"] = xt::xtensor<float, 2>{{1.0f}};
        CHECK_THROWS_AS(nn::save_checkpoint(tmp.path / "model", bad), autodiff::Error);
        CHECK_FALSE(fs::exists(tmp.path / "model"));
    }
    CHECK(entries_in(tmp.path) <= 1);
}

TEST_CASE("loading falls back to the checkpoint parked by a save killed mid-swap", "[checkpoint]") {
    // Only the non-atomic fallback swap (file systems without RENAME_EXCHANGE) can leave
    // this state; the old checkpoint must still load, and the next save put it back first.
    TempDir tmp("ckpt");
    const auto dir = tmp.path / "model";
    nn::save_checkpoint(dir, sample_checkpoint());
    fs::rename(dir, test_support::parked_path(dir, test_support::pid_of_exited_process()));
    CHECK(nn::load_checkpoint(dir).meta.at("epoch") == "7");
    nn::save_checkpoint(dir, nn::Checkpoint{{{"epoch", "8"}}, {}});
    CHECK(nn::load_checkpoint(dir).meta.at("epoch") == "8");
    CHECK(entries_in(tmp.path) == 1);
}

TEST_CASE("a load that overlaps saves reads one whole checkpoint, never a false 'corrupted'", "[checkpoint]") {
    // A load read the old manifest and then a new array (the save exchanged the directories in
    // between) and reported a valid checkpoint as corrupted: 25 of 600 loads in the attack.
    TempDir tmp("overlap");
    const auto dir = tmp.path / "model";
    auto version = [](int k) {
        nn::Checkpoint c;
        c.meta["version"] = std::to_string(k);
        c.arrays["w"] = xt::xtensor<float, 2>(std::array<std::size_t, 2>{8, 8}, float(k));
        c.arrays["b"] = xt::xtensor<double, 2>(std::array<std::size_t, 2>{8, 1}, double(k));
        return c;
    };
    nn::save_checkpoint(dir, version(0));
    std::atomic<bool> stop{false};
    std::thread saver([&] {
        for (int k = 1; !stop; ++k) nn::save_checkpoint(dir, version(k));
    });
    int failures = 0, mixed = 0;
    for (int i = 0; i < 1000; ++i) {
        try {
            const nn::Checkpoint c = nn::load_checkpoint(dir);
            const float k = float(std::stoi(c.meta.at("version")));
            const auto& w = std::get<xt::xtensor<float, 2>>(c.arrays.at("w"));
            const auto& b = std::get<xt::xtensor<double, 2>>(c.arrays.at("b"));
            mixed += (w(0, 0) != k || b(7, 0) != double(k));
        } catch (const nn::DataError&) {
            ++failures;
        }
    }
    stop = true;
    saver.join();
    CHECK(failures == 0);
    CHECK(mixed == 0);
}
