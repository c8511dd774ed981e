// What save_checkpoint may replace and delete (issue 10, items 1 and 3): only a complete,
// valid tapegrad checkpoint holding nothing but its own files; a symlink stays a symlink;
// temporary directories of a killed save are removed by the next save to the same place;
// files get the user's umask.
#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../temp_dir.hpp"
#include "nn/io/checkpoint.hpp"
#include "small_checkpoint.hpp"

using Catch::Matchers::Contains;
using test_support::names_in;
using test_support::read_file;
using test_support::small_checkpoint;
using test_support::TempDir;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("save_checkpoint replaces only a valid checkpoint holding nothing else", "[checkpoint][replace]") {
    TempDir tmp("replace");
    const fs::path dir = tmp.path / "model";

    SECTION("a directory with a file named manifest.json that is not a checkpoint") {
        fs::create_directory(dir);
        tmp.write("model/manifest.json", "{\"name\": \"my web app\"}");
        tmp.write("model/index.js", "console.log(1)");
        CHECK_THROWS_WITH(nn::save_checkpoint(dir, small_checkpoint("1")),
                          Contains(dir.string()) && Contains("not a checkpoint"));
        CHECK(read_file(dir / "index.js") == "console.log(1)");
        CHECK(read_file(dir / "manifest.json") == "{\"name\": \"my web app\"}");
    }
    SECTION("a checkpoint with a file of the user's in it: refused, naming the file") {
        nn::save_checkpoint(dir, small_checkpoint("1"));
        tmp.write("model/notes.txt", "lr 0.1 diverged");
        fs::create_directory(dir / "plots");
        CHECK_THROWS_WITH(nn::save_checkpoint(dir, small_checkpoint("2")),
                          Contains("notes.txt") && Contains("plots") && Contains(dir.string()));
        CHECK(read_file(dir / "notes.txt") == "lr 0.1 diverged");
        CHECK(nn::load_checkpoint(dir).meta.at("epoch") == "1");
    }
    SECTION("a checkpoint whose manifest fails its own CRC") {
        nn::save_checkpoint(dir, small_checkpoint("1"));
        std::string text = read_file(dir / "manifest.json");
        text.replace(text.find("\"1\""), 3, "\"9\"");
        std::ofstream(dir / "manifest.json", std::ios::trunc | std::ios::binary) << text;
        CHECK_THROWS_WITH(nn::save_checkpoint(dir, small_checkpoint("2")), Contains("manifest.json"));
        CHECK(read_file(dir / "manifest.json") == text);
    }
    SECTION("a valid checkpoint is replaced, an empty directory is filled") {
        nn::save_checkpoint(dir, small_checkpoint("1"));
        nn::save_checkpoint(dir, small_checkpoint("2"));
        CHECK(nn::load_checkpoint(dir).meta.at("epoch") == "2");
        fs::create_directory(tmp.path / "empty");
        nn::save_checkpoint(tmp.path / "empty", small_checkpoint("3"));
        CHECK(nn::load_checkpoint(tmp.path / "empty").meta.at("epoch") == "3");
    }
    SECTION("a regular file in the way") {
        tmp.write("model", "not a directory");
        CHECK_THROWS_WITH(nn::save_checkpoint(dir, small_checkpoint("1")), Contains(dir.string()));
        CHECK(read_file(dir) == "not a directory");
    }
}

TEST_CASE("save_checkpoint through a symlink keeps the symlink", "[checkpoint][replace]") {
    TempDir tmp("symlink");
    const fs::path real = tmp.path / "runs" / "real-model";
    fs::create_directories(real.parent_path());
    nn::save_checkpoint(real, small_checkpoint("1"));
    const fs::path link = tmp.path / "latest";
    fs::create_directory_symlink(real, link);

    nn::save_checkpoint(link, small_checkpoint("2"));
    CHECK(fs::is_symlink(link));
    CHECK(fs::read_symlink(link) == real);
    CHECK(nn::load_checkpoint(real).meta.at("epoch") == "2");
    CHECK(nn::load_checkpoint(link).meta.at("epoch") == "2");
    CHECK(names_in(tmp.path) == std::vector<std::string>{"latest", "runs"});
    CHECK(names_in(real.parent_path()) == std::vector<std::string>{"real-model"});
}

TEST_CASE("the next save removes the temporary directory of a killed save, and nothing else", "[checkpoint][replace]") {
    TempDir tmp("stale");
    const fs::path dir = tmp.path / "model";
    nn::save_checkpoint(dir, small_checkpoint("1"));
    // A directory of the user's that merely looks like ours is left alone.
    fs::create_directory(tmp.path / ".model.tmp-mine");
    tmp.write(".model.tmp-mine/thesis.tex", "chapter 1");

    // A child killed in the middle of writing an array (SIGXFSZ past a 1 KB file size limit),
    // so it leaves its temporary directory behind, as a SIGKILL or a power cut would.
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        struct rlimit limit {1024, 1024};
        setrlimit(RLIMIT_FSIZE, &limit);
        nn::Checkpoint big = small_checkpoint("2");
        big.arrays["big"] = xt::xtensor<double, 2>(std::array<std::size_t, 2>{64, 64}, 1.0);
        try {
            nn::save_checkpoint(dir, big);
        } catch (...) {
        }
        _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(names_in(tmp.path).size() == 3);  // model, the user's directory, the killed save's

    nn::save_checkpoint(dir, small_checkpoint("3"));
    CHECK(names_in(tmp.path) == std::vector<std::string>{".model.tmp-mine", "model"});
    CHECK(read_file(tmp.path / ".model.tmp-mine" / "thesis.tex") == "chapter 1");
    CHECK(nn::load_checkpoint(dir).meta.at("epoch") == "3");
}

TEST_CASE("checkpoint files and directories get the user's umask", "[checkpoint][replace]") {
    TempDir tmp("umask");
    const mode_t old = ::umask(022);
    nn::save_checkpoint(tmp.path / "model", small_checkpoint("1"));
    ::umask(077);
    nn::save_checkpoint(tmp.path / "private", small_checkpoint("1"));
    ::umask(old);
    CHECK(mode_of(tmp.path / "model") == 0755);
    CHECK(mode_of(tmp.path / "model" / "manifest.json") == 0644);
    CHECK(mode_of(tmp.path / "model" / "W.npy") == 0644);
    CHECK(mode_of(tmp.path / "private") == 0700);
    CHECK(mode_of(tmp.path / "private" / "W.npy") == 0600);
}

TEST_CASE("save, load and check_checkpoint_target take 'link/../ckpt' as the kernel does", "[checkpoint][replace]") {
    // "link/.." is the directory holding what the link points to, not the one holding the link.
    TempDir tmp("dotdot");
    fs::create_directories(tmp.path / "runs" / "deep");
    fs::create_directory_symlink(tmp.path / "runs" / "deep", tmp.path / "link");
    const fs::path through_link = tmp.path / "link" / ".." / "ckpt";  // runs/ckpt
    // What a lexical "..", dropping "link", would take for it: a directory of the user's.
    fs::create_directory(tmp.path / "ckpt");
    tmp.write("ckpt/thesis.tex", "chapter 1");

    nn::check_checkpoint_target(through_link);  // runs/ckpt does not exist: nothing in the way
    nn::save_checkpoint(through_link, small_checkpoint("1"));
    CHECK(nn::load_checkpoint(tmp.path / "runs" / "ckpt").meta.at("epoch") == "1");
    nn::save_checkpoint(tmp.path / "link" / ".." / "ckpt" / ".", small_checkpoint("2"));
    CHECK(nn::load_checkpoint(through_link).meta.at("epoch") == "2");
    CHECK(nn::load_checkpoint(tmp.path / "runs" / "ckpt/").meta.at("epoch") == "2");
    CHECK(names_in(tmp.path / "ckpt") == std::vector<std::string>{"thesis.tex"});
    CHECK(names_in(tmp.path / "runs") == std::vector<std::string>{"ckpt", "deep"});
}

// Found by an attack: a symlink loop as the directory made these throw std::filesystem's own
// filesystem_error, not the autodiff::Error that callers catch for bad input; and a path under
// a regular file passed the check before a run, to fail at its first save.
TEST_CASE("a directory the filesystem cannot resolve, or under a file, is refused as an Error", "[checkpoint][replace]") {
    TempDir tmp("unresolvable");
    const fs::path loop = tmp.path / "loop";
    fs::create_directory_symlink(loop, loop);
    for (const fs::path& dir : {loop, loop / "ckpt"}) {
        INFO(dir);
        CHECK_THROWS_AS(nn::check_checkpoint_target(dir), autodiff::Error);
        CHECK_THROWS_AS(nn::save_checkpoint(dir, small_checkpoint("1")), autodiff::Error);
        CHECK_THROWS_AS(nn::load_checkpoint(dir), autodiff::Error);
    }
    CHECK_THROWS_WITH(nn::check_checkpoint_target(loop), Contains("Too many levels of symbolic links"));
    std::ofstream(tmp.path / "userfile") << "a user's file\n";
    CHECK_THROWS_WITH(nn::check_checkpoint_target(tmp.path / "userfile" / "ckpt"),
                      Contains("userfile' is not a directory"));
    CHECK(read_file(tmp.path / "userfile") == "a user's file\n");
    // A name that fits, but not the names a save makes beside it: refused before a run.
    const fs::path long_name = tmp.path / std::string(240, 'c');
    CHECK_THROWS_WITH(nn::check_checkpoint_target(long_name), Contains("is too long: a save makes names of"));
    CHECK_NOTHROW(nn::check_checkpoint_target(tmp.path / std::string(200, 'c')));
}
