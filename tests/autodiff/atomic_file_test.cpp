#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "autodiff/atomic_file.hpp"
#include "../nn/temp_dir.hpp"  // test support only: nothing of nn

using Catch::Matchers::Contains;
using test_support::read_file;
using test_support::TempDir;

namespace {

std::size_t entries_in(const std::filesystem::path& dir) {
    std::size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(dir); it != std::filesystem::directory_iterator(); ++it) ++n;
    return n;
}

}  // namespace

TEST_CASE("write_file_atomically creates, then replaces, a file", "[atomic_file]") {
    TempDir tmp("atomic");
    const auto path = tmp.path / "out.txt";
    autodiff::write_file_atomically(path, [](std::ostream& out) { out << "first"; });
    CHECK(read_file(path) == "first");
    autodiff::write_file_atomically(path, [](std::ostream& out) { out << "second, longer"; });
    CHECK(read_file(path) == "second, longer");
    CHECK(entries_in(tmp.path) == 1);  // no temporary file left behind
}

TEST_CASE("write_file_atomically keeps the old file when the writer fails", "[atomic_file]") {
    TempDir tmp("atomic");
    const auto path = tmp.path / "out.txt";
    autodiff::write_file_atomically(path, [](std::ostream& out) { out << "precious"; });
    CHECK_THROWS_WITH(autodiff::write_file_atomically(path,
                                                [](std::ostream& out) {
                                                    out << "half of the new";
                                                    throw std::runtime_error("writer died");
                                                }),
                      "writer died");
    CHECK(read_file(path) == "precious");
    CHECK(entries_in(tmp.path) == 1);
}

TEST_CASE("write_file_atomically names the path when it cannot write", "[atomic_file]") {
    TempDir tmp("atomic");
    const auto path = tmp.path / "no-such-dir" / "out.txt";
    CHECK_THROWS_WITH(autodiff::write_file_atomically(path, [](std::ostream& out) { out << "x"; }),
                      Contains(path.string()));
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("write_file_atomically onto a directory fails and leaves it alone", "[atomic_file]") {
    TempDir tmp("atomic");
    const auto path = tmp.path / "a-dir";
    std::filesystem::create_directory(path);
    CHECK_THROWS_WITH(autodiff::write_file_atomically(path, [](std::ostream& out) { out << "x"; }),
                      Contains(path.string()));
    CHECK(std::filesystem::is_directory(path));
    CHECK(entries_in(tmp.path) == 1);
}

TEST_CASE("write_file_atomically through a symlink replaces the file it points to and keeps the link",
          "[atomic_file]") {
    // It renamed over the link: the user's link became a file of its own, its target stale.
    TempDir tmp("atomic_link");
    std::filesystem::create_directory(tmp.path / "shared");
    const auto target = tmp.path / "shared" / "run1.csv";
    autodiff::write_file_atomically(target, [](std::ostream& out) { out << "old"; });
    const auto link = tmp.path / "metrics.csv";
    std::filesystem::create_symlink(target, link);
    autodiff::write_file_atomically(link, [](std::ostream& out) { out << "new"; });
    CHECK(std::filesystem::is_symlink(link));
    CHECK(read_file(target) == "new");
    CHECK(entries_in(tmp.path / "shared") == 1);
}

// The check-free last word of a caller that replaces only its own files: what stands at the
// path is judged after it was displaced, and a file refused is put back untouched.
TEST_CASE("write_file_atomically with may_replace replaces only a file it accepts, and puts back one it refuses",
          "[atomic_file]") {
    TempDir tmp("atomic");
    const auto path = tmp.path / "out.txt";
    auto ours = [](const std::filesystem::path& displaced) { return read_file(displaced).rfind("ours", 0) == 0; };
    std::string seen;
    auto recording = [&](const std::filesystem::path& displaced) { return seen = read_file(displaced), ours(displaced); };

    autodiff::write_file_atomically(path, [](std::ostream& out) { out << "ours 1"; }, recording);  // nothing stood there
    CHECK(seen.empty());
    CHECK(read_file(path) == "ours 1");
    autodiff::write_file_atomically(path, [](std::ostream& out) { out << "ours 2"; }, recording);
    CHECK(seen == "ours 1");  // asked about the file it displaced
    CHECK(read_file(path) == "ours 2");

    { std::ofstream(path) << "a user's notes"; }
    CHECK_THROWS_WITH(autodiff::write_file_atomically(path, [](std::ostream& out) { out << "ours 3"; }, recording),
                      Contains(path.string()) && Contains("left as it is"));
    CHECK(seen == "a user's notes");
    CHECK(read_file(path) == "a user's notes");
    CHECK(entries_in(tmp.path) == 1);  // no temporary file left behind
}
