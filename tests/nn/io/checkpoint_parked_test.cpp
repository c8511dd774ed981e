// The old checkpoint the fallback exchange parks (file systems without RENAME_EXCHANGE) is
// parked under a name only tapegrad makes: a user's "<dir>.previous" is never moved, loaded or
// deleted, and what a save killed between the renames leaves is recovered or removed by the
// next save, touching only a parked checkpoint's own files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "../temp_dir.hpp"
#include "killed_save.hpp"
#include "nn/io/checkpoint.hpp"
#include "small_checkpoint.hpp"

using Catch::Matchers::Contains;
using test_support::parked_path;
using test_support::pid_of_exited_process;
using test_support::names_in;
using test_support::read_file;
using test_support::small_checkpoint;
using test_support::TempDir;
namespace fs = std::filesystem;

namespace {

// Every file under `dir` (relative path -> bytes): what "unchanged byte for byte" compares.
std::map<std::string, std::string> tree_of(const fs::path& dir) {
    std::map<std::string, std::string> tree;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        tree[fs::relative(entry.path(), dir).string()] = entry.is_regular_file() ? read_file(entry.path()) : "<dir>";
    return tree;
}

std::string epoch_at(const fs::path& dir) { return nn::load_checkpoint(dir).meta.at("epoch"); }

}  // namespace

TEST_CASE("a user's <dir>.previous survives saves byte for byte and is never loaded", "[checkpoint][parked]") {
    TempDir tmp("user-previous");
    SECTION("a backup of a checkpoint named model.previous, with no model") {
        const fs::path dir = tmp.path / "model";
        nn::save_checkpoint(tmp.path / "model.previous", small_checkpoint("1"));
        const auto backup = tree_of(tmp.path / "model.previous");
        CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains(dir.string()) && Contains("no such checkpoint"));
        nn::save_checkpoint(dir, small_checkpoint("2"));
        nn::save_checkpoint(dir, small_checkpoint("3"));
        CHECK(epoch_at(dir) == "3");
        CHECK(tree_of(tmp.path / "model.previous") == backup);
        CHECK(epoch_at(tmp.path / "model.previous") == "1");
    }
    SECTION("a directory of notes named notes.previous, with no notes") {
        const fs::path dir = tmp.path / "notes";
        fs::create_directories(tmp.path / "notes.previous" / "drafts");
        tmp.write("notes.previous/todo.txt", "buy milk");
        tmp.write("notes.previous/drafts/chapter1.md", "# It was a dark night");
        const auto notes = tree_of(tmp.path / "notes.previous");
        nn::save_checkpoint(dir, small_checkpoint("1"));
        CHECK(epoch_at(dir) == "1");
        CHECK(tree_of(tmp.path / "notes.previous") == notes);
    }
    SECTION("beside a checkpoint that is replaced") {
        const fs::path dir = tmp.path / "model";
        nn::save_checkpoint(dir, small_checkpoint("1"));
        nn::save_checkpoint(tmp.path / "model.previous", small_checkpoint("0"));
        const auto backup = tree_of(tmp.path / "model.previous");
        nn::save_checkpoint(dir, small_checkpoint("2"));
        CHECK(epoch_at(dir) == "2");
        CHECK(tree_of(tmp.path / "model.previous") == backup);
    }
}

TEST_CASE("a save killed before its new checkpoint was in place: the parked one is put back", "[checkpoint][parked]") {
    TempDir tmp("killed-parked");
    const fs::path dir = tmp.path / "model";
    const pid_t killed = pid_of_exited_process();
    nn::save_checkpoint(dir, small_checkpoint("1"));
    fs::rename(dir, parked_path(dir, killed));
    // Its new checkpoint, complete in its temporary directory, had not been moved in yet.
    nn::save_checkpoint(tmp.path / "scratch", small_checkpoint("2"));
    fs::rename(tmp.path / "scratch", tmp.path / (".model.tmp-" + std::to_string(killed) + "-x9Y8z7"));

    CHECK(epoch_at(dir) == "1");  // the last checkpoint saved completely
    nn::save_checkpoint(dir, small_checkpoint("3"));
    CHECK(epoch_at(dir) == "3");
    CHECK(names_in(tmp.path) == std::vector<std::string>{"model"});
}

TEST_CASE("a save killed after its new checkpoint was in place: the parked one is removed", "[checkpoint][parked]") {
    TempDir tmp("killed-new-in-place");
    const fs::path dir = tmp.path / "model";
    nn::save_checkpoint(dir, small_checkpoint("2"));
    nn::save_checkpoint(tmp.path / "scratch", small_checkpoint("1"));
    fs::rename(tmp.path / "scratch", parked_path(dir, pid_of_exited_process()));
    REQUIRE(epoch_at(dir) == "2");

    nn::save_checkpoint(dir, small_checkpoint("3"));
    CHECK(epoch_at(dir) == "3");
    CHECK(names_in(tmp.path) == std::vector<std::string>{"model"});
}

TEST_CASE("a parked directory is removed only if it is a checkpoint of a process that is gone", "[checkpoint][parked]") {
    TempDir tmp("parked-kept");
    const fs::path dir = tmp.path / "model";
    SECTION("one holding a file of the user's keeps everything, and is not put back either") {
        const fs::path parked = parked_path(dir, pid_of_exited_process());
        nn::save_checkpoint(parked, small_checkpoint("1"));
        tmp.write(parked.filename().string() + "/notes.txt", "keep me");
        const auto before = tree_of(parked);
        nn::save_checkpoint(dir, small_checkpoint("2"));  // no model: a new one, not the parked
        nn::save_checkpoint(dir, small_checkpoint("3"));  // model valid: the parked one is not ours
        CHECK(epoch_at(dir) == "3");
        CHECK(tree_of(parked) == before);
    }
    SECTION("one of a process that is still running") {
        const fs::path parked = parked_path(dir, ::getppid());
        nn::save_checkpoint(parked, small_checkpoint("1"));
        const auto before = tree_of(parked);
        nn::save_checkpoint(dir, small_checkpoint("2"));
        nn::save_checkpoint(dir, small_checkpoint("3"));
        CHECK(epoch_at(dir) == "3");
        CHECK(tree_of(parked) == before);
    }
}
