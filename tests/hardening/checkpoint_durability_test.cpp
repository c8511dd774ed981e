// Checkpoints survive SIGKILL at any moment: a child process saves new versions in a loop,
// the parent kills it at seeded random moments, and the checkpoint directory must then load
// intact as one whole version, never a mix and never a half-written file. Also: damage to
// the manifest itself (not covered by tests/nn/checkpoint_test.cpp) is rejected.
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../nn/temp_dir.hpp"
#include "nn/io/checkpoint.hpp"

using Catch::Matchers::Contains;
using test_support::read_file;
using test_support::TempDir;
namespace fs = std::filesystem;

namespace {

// Version v of the checkpoint: every element encodes v, so a mix of versions shows.
// W is 160x200 doubles (256 KB) and b a float column; a few hundred KB per save.
nn::Checkpoint version(std::uint64_t v) {
    nn::Checkpoint c;
    c.meta["version"] = std::to_string(v);
    xt::xtensor<double, 2> W({160, 200});
    for (std::size_t k = 0; k < W.size(); ++k) W.data()[k] = double(v) * 1e6 + double(k);
    xt::xtensor<float, 2> b({4096, 1});
    for (std::size_t k = 0; k < b.size(); ++k) b.data()[k] = float(v % 1000) + float(k) / 8192.0f;
    c.arrays["W"] = W;
    c.arrays["b"] = b;
    return c;
}

// Throws unless `c` is exactly version(v) for the v in its metadata; returns v.
std::uint64_t verify_whole(const nn::Checkpoint& c) {
    const std::uint64_t v = std::stoull(c.meta.at("version"));
    const nn::Checkpoint expected = version(v);
    REQUIRE(c.meta == expected.meta);
    REQUIRE(c.array<double>("W") == expected.array<double>("W"));
    REQUIRE(c.array<float>("b") == expected.array<float>("b"));
    return v;
}

// The child: save versions first, first+1, ... forever, reporting each completed save
// on the pipe. Never returns into the test framework.
[[noreturn]] void save_forever(const fs::path& dir, std::uint64_t first, int report_fd) {
    for (std::uint64_t v = first;; ++v) {
        try {
            nn::save_checkpoint(dir, version(v));
        } catch (...) {
            _exit(3);
        }
        if (write(report_fd, &v, sizeof v) != sizeof v) _exit(4);
    }
}

// The last version the child reported as saved (0 if none), reading all it wrote.
std::uint64_t last_reported(int fd) {
    std::uint64_t v = 0, got = 0;
    while (read(fd, &got, sizeof got) == sizeof got) v = got;
    return v;
}

void overwrite_byte(const fs::path& file, std::size_t at, char value) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(value);
}

}  // namespace

TEST_CASE("a checkpoint killed mid-save always loads as one whole version", "[hardening][checkpoint][kill]") {
    TempDir tmp("kill");
    const fs::path dir = tmp.path / "model";
    std::mt19937 gen(20240517);
    std::uniform_int_distribution<int> delay_us(0, 25000);
    std::uint64_t saved = 0;  // the newest version known to be complete
    int kills_mid_save = 0;
    // Under load (the machine building something else) a save took longer than the longest
    // delay 50 times in a row, and the test saw none complete: until one has, the delays
    // grow, by 25 ms every 25 kills (at most 400 kills).
    for (int kill_no = 0; kill_no < 50 || (saved == 0 && kill_no < 400); ++kill_no) {
        const int stretch = saved == 0 ? 1 + kill_no / 25 : 1;
        int fds[2];
        REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
        const pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            close(fds[0]);
            save_forever(dir, saved + 1, fds[1]);
        }
        close(fds[1]);
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us(gen) * stretch));
        REQUIRE(kill(child, SIGKILL) == 0);
        int status = 0;
        REQUIRE(waitpid(child, &status, 0) == child);
        INFO("kill " << kill_no << ", status " << status);
        REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));  // not an exit from a failed save
        const std::uint64_t reported = last_reported(fds[0]);
        close(fds[0]);
        if (reported != 0) saved = reported;

        if (saved == 0 && !fs::exists(dir)) continue;  // killed before the first save finished
        const nn::Checkpoint loaded = nn::load_checkpoint(dir);
        const std::uint64_t v = verify_whole(loaded);
        // The one on disk is the last reported or the one after (renamed in, not yet reported).
        CHECK(v >= saved);
        CHECK(v <= saved + 1);
        if (v == saved + 1) ++kills_mid_save;
        saved = v;
        // Only the complete files of the checkpoint are in it: no temporary, no partial file.
        for (const auto& entry : fs::directory_iterator(dir)) {
            const auto name = entry.path().filename().string();
            CHECK((name == "manifest.json" || name == "W.npy" || name == "b.npy"));
        }
    }
    CHECK(saved > 0);
    // Killed saves leave their temporary directories (".model.tmp-<pid>-*") beside the
    // checkpoint, never mistaken for it; the next save removes them (issue 10, item 3).
    std::size_t left_by_kills = 0;
    for (const auto& entry : fs::directory_iterator(tmp.path)) left_by_kills += entry.path().filename() != "model";
    nn::save_checkpoint(dir, version(saved + 1));
    std::vector<std::string> after;
    for (const auto& entry : fs::directory_iterator(tmp.path)) after.push_back(entry.path().filename().string());
    CHECK(after == std::vector<std::string>{"model"});
    WARN("versions saved: " << saved << ", kills between a rename and its report: " << kills_mid_save
                            << ", temporary directories left by kills and removed by the next save: " << left_by_kills);
}

TEST_CASE("damage to the manifest itself is rejected", "[hardening][checkpoint]") {
    TempDir tmp("manifest");
    const fs::path dir = tmp.path / "model";
    nn::Checkpoint c = version(7);
    c.meta["epoch"] = "12";
    nn::save_checkpoint(dir, c);
    const fs::path manifest = dir / "manifest.json";
    const std::string text = read_file(manifest);

    auto damage_at = [&](const std::string& what, std::size_t offset, char value) {
        const auto at = text.find(what);
        REQUIRE(at != std::string::npos);
        overwrite_byte(manifest, at + offset, value);
    };
    SECTION("a metadata value changed (still valid JSON)") {
        damage_at("\"epoch\": \"12\"", 10, '3');
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("corrupted"));
    }
    SECTION("a metadata key changed") {
        damage_at("\"epoch\"", 1, 'E');
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("corrupted"));
    }
    SECTION("the manifest's own checksum changed") {
        damage_at("\"manifest_crc32\": \"", 19, text[text.find("\"manifest_crc32\": \"") + 19] == '0' ? '1' : '0');
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("corrupted"));
    }
    SECTION("the checksum's key changed") {
        damage_at("\"manifest_crc32\"", 1, 'M');
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("manifest_crc32"));
    }
    SECTION("a truncated tail") {
        fs::resize_file(manifest, text.size() - 3);
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(manifest.string()) && Contains("malformed"));
    }
    SECTION("intact, it loads") {
        CHECK(nn::load_checkpoint(dir).meta.at("epoch") == "12");
    }
}
