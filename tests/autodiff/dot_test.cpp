// to_dot: the graph's structure (which entries, which arrows, what each box says), and a
// render through Graphviz's `dot` when it is installed.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../nn/temp_dir.hpp"  // test support only: nothing of nn
#include "autodiff/autodiff.hpp"
#include "autodiff/dot.hpp"

using namespace autodiff;

namespace {

// "nA -> nB" arrows, as pairs of tape indices.
std::set<std::pair<int, int>> arrows(const std::string& dot) {
    std::set<std::pair<int, int>> out;
    const std::regex arrow(R"(n(\d+) -> n(\d+))");
    for (auto it = std::sregex_iterator(dot.begin(), dot.end(), arrow); it != std::sregex_iterator(); ++it)
        out.insert({std::stoi((*it)[1]), std::stoi((*it)[2])});
    return out;
}

// The attribute list of box n.
std::string box(const std::string& dot, int n) {
    const std::string start = "  n" + std::to_string(n) + " [";
    const auto at = dot.find(start);
    if (at == std::string::npos) return "";
    return dot.substr(at, dot.find("];\n", at) - at);
}

bool dot_installed() { return std::system("dot -V > /dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("to_dot draws the entries the output depends on, with an arrow per input", "[dot]") {
    Tape<double> tape;
    Parameter<double> W(Matrix<double>{{0.5, -0.2, 0.1}, {0.3, 0.8, -0.5}}, "W1");
    Parameter<double> b(Matrix<double>{{0.1}, {-0.1}}, "b1");
    Var<double> X = tape.constant(Matrix<double>{{1, 2}, {3, 4}, {5, 6}});  // 0
    Var<double> w = tape.parameter(W);                                        // 1
    Var<double> bias = tape.parameter(b);                                     // 2
    Var<double> unused = tape.constant(Matrix<double>{{7}});                  // 3: not drawn
    Var<double> Z = linear(w, X, bias);                                       // 4
    Var<double> A = relu(Z);                                                  // 5
    Var<double> loss = softmax_cross_entropy(A, Labels{0, 1});                // 6
    (void)unused;

    const std::string before = to_dot(tape, loss);
    CHECK(before.rfind("digraph tape {", 0) == 0);
    CHECK(before.substr(before.size() - 2) == "}\n");
    CHECK(arrows(before) == std::set<std::pair<int, int>>{{1, 4}, {0, 4}, {2, 4}, {4, 5}, {5, 6}});
    CHECK(box(before, 3).empty());
    // Operand order on the arrows of a multi-input op: linear(W, A, b).
    CHECK(before.find("n1 -> n4 [label=\"0\"]") != std::string::npos);
    CHECK(before.find("n0 -> n4 [label=\"1\"]") != std::string::npos);
    CHECK(before.find("n2 -> n4 [label=\"2\"]") != std::string::npos);

    CHECK_THAT(box(before, 0), Catch::Contains("constant\\n3x2") && Catch::Contains("dashed"));
    CHECK_THAT(box(before, 1), Catch::Contains("W1\\n2x3") && Catch::Contains("penwidth=2"));
    CHECK_THAT(box(before, 2), Catch::Contains("b1\\n2x1"));
    CHECK_THAT(box(before, 4), Catch::Contains("linear\\n2x2") && Catch::Contains("penwidth=2"));
    CHECK_THAT(box(before, 5), Catch::Contains("relu\\n2x2"));
    CHECK_THAT(box(before, 6), Catch::Contains("softmax_cross_entropy\\n1x1") && Catch::Contains("loss = ") &&
                                   Catch::Contains("peripheries=2"));
    CHECK(before.find("grad ") == std::string::npos);  // no gradients before backward()

    tape.backward(loss);
    const std::string after = to_dot(tape, loss);
    CHECK_THAT(box(after, 1), Catch::Contains("grad 2x3"));
    CHECK_THAT(box(after, 4), Catch::Contains("grad 2x2"));
    CHECK_THAT(box(after, 0), !Catch::Contains("grad"));  // constants get no gradient
}

TEST_CASE("to_dot: options, escaping, a reused input, stale handles", "[dot]") {
    Tape<double> tape;
    Parameter<double> p(Matrix<double>{{2.0}}, "weight \"w\"");
    Var<double> x = tape.parameter(p);
    Var<double> y = x * x;  // one entry read twice: two arrows into the product
    DotOptions options;
    options.title = "a \"title\"";
    options.output_label = "y";
    options.left_to_right = true;
    const std::string dot = to_dot(tape, y, options);
    CHECK(dot.find("rankdir=LR;") != std::string::npos);
    CHECK(dot.find("label=\"a \\\"title\\\"\"") != std::string::npos);
    CHECK(dot.find("weight \\\"w\\\"") != std::string::npos);
    CHECK(dot.find("n0 -> n1 [label=\"0\"]") != std::string::npos);
    CHECK(dot.find("n0 -> n1 [label=\"1\"]") != std::string::npos);
    CHECK_THAT(box(dot, 1), Catch::Contains("y = 4"));

    // Only what the given output depends on: drawing x alone shows one box.
    CHECK(arrows(to_dot(tape, x)).empty());

    // A NUL byte (a DOT file cannot hold one) is shown as the two characters \0.
    Parameter<double> nul(Matrix<double>{{1.0}}, std::string("a\0b", 3));
    const std::string with_nul = to_dot(tape, tape.parameter(nul));
    CHECK(with_nul.find('\0') == std::string::npos);
    CHECK(with_nul.find("a\\\\0b") != std::string::npos);

    tape.reset();
    CHECK_THROWS_WITH(to_dot(tape, y), Catch::Contains("to_dot") && Catch::Contains("stale"));
    CHECK_THROWS_WITH(tape.entry(0), Catch::Contains("Tape::entry"));
}

TEST_CASE("to_dot does not follow NoGrad inputs whose entries may have been reused", "[dot]") {
    // Under NoGrad an entry whose last handle is gone is reused: sum(x)'s entry 1, read by
    // exp (entry 2), became sum(w) with input 3, and to_dot drew an arrow from a box that
    // did not exist (n3 -> n1), after marking index 3 of a 3-entry vector.
    Tape<double> tape;
    NoGrad<double> off(tape);
    const Var<double> x = tape.leaf(Matrix<double>({2, 2}, 1.0));
    Var<double> b;
    {
        const Var<double> total = sum(x);
        b = exp(total);
    }
    const Var<double> w = exp(x);
    const Var<double> v = sum(w);
    REQUIRE(v.index() == 1);  // the released entry, reused
    REQUIRE(w.index() == 3);
    const std::string dot = to_dot(tape, b);
    CHECK(arrows(dot).empty());
    CHECK(box(dot, 1).empty());
    CHECK_THAT(box(dot, 2), Catch::Contains("exp\\n1x1\\n(NoGrad: inputs not drawn)"));

    // An input recorded with gradients on is never released: still drawn.
    Tape<double> kept;
    const Var<double> a = kept.leaf(Matrix<double>{{1.0}});
    Var<double> e;
    {
        NoGrad<double> scope(kept);
        e = exp(a);
    }
    CHECK(arrows(to_dot(kept, e)) == std::set<std::pair<int, int>>{{0, 1}});
}

TEST_CASE("to_dot's graph renders with Graphviz", "[dot]") {
    if (!dot_installed()) {
        WARN("Graphviz's dot is not installed: render skipped");
        return;
    }
    Tape<float> tape;
    Parameter<float> W(Matrix<float>{{0.5f, -0.2f}, {0.3f, 0.8f}}, "W");
    Var<float> y = sum(tanh(matmul(tape.parameter(W), tape.constant(Matrix<float>{{1.f}, {2.f}}))));
    tape.backward(y);
    const auto dir = std::filesystem::temp_directory_path() / ("tapegrad_dot_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    save_dot(dir / "tape.dot", tape, y);
    const std::string command = "dot -Tsvg \"" + (dir / "tape.dot").string() + "\" -o \"" + (dir / "tape.svg").string() + "\"";
    CHECK(std::system(command.c_str()) == 0);
    std::ifstream svg(dir / "tape.svg");
    const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    CHECK_THAT(text, Catch::Contains("<svg") && Catch::Contains("matmul") && Catch::Contains("tanh"));
    std::filesystem::remove_all(dir);
}

namespace {

// While it lives, a write that would make a file larger than `bytes` fails (EFBIG), as on a
// full disk, instead of killing the process (SIGXFSZ ignored).
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &before_) == 0);
        previous_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit limited = before_;
        limited.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &before_);
        std::signal(SIGXFSZ, previous_);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;

private:
    rlimit before_{};
    void (*previous_)(int) = SIG_DFL;
};

}  // namespace

// Found by the review: save_dot wrote its path in place, so a write that failed part way (a
// full disk, a crash) left the user's file cut short: here 64 bytes of the new graph instead
// of "precious".
TEST_CASE("save_dot over a file keeps it whole when the write fails, and leaves no temporary file", "[dot]") {
    test_support::TempDir tmp("save-dot");
    const std::filesystem::path path = tmp.path / "tape.dot";
    tmp.write("tape.dot", "precious");
    Tape<double> tape;
    Parameter<double> W(Matrix<double>{{0.5, -0.2}, {0.3, 0.8}}, "W");
    const Var<double> y = sum(tanh(matmul(tape.parameter(W), tape.constant(Matrix<double>{{1.0}, {2.0}}))));
    REQUIRE(to_dot(tape, y).size() > 64);
    std::string refused;
    {
        const FileSizeLimit limit(64);  // nothing but the save under it: not even Catch's report
        try {
            save_dot(path, tape, y);
        } catch (const Error& e) {
            refused = e.what();
        }
    }
    CHECK(refused == "save_dot: cannot write '" + path.string() + "' (disk full?)");
    CHECK(test_support::read_file(path) == "precious");
    std::size_t entries = 0;
    for (auto it = std::filesystem::directory_iterator(tmp.path); it != std::filesystem::directory_iterator(); ++it) ++entries;
    CHECK(entries == 1);  // no temporary file left beside it
    save_dot(path, tape, y);
    CHECK(test_support::read_file(path) == to_dot(tape, y));
}

// A pipe has nothing a failed write could destroy, and renaming a file over it would leave its
// reader waiting for ever: the graph goes into the pipe (notebook_mlp --dot FIFO).
TEST_CASE("save_dot into a pipe writes the graph into it and leaves the pipe in place", "[dot]") {
    test_support::TempDir tmp("save-dot-pipe");
    const std::filesystem::path path = tmp.path / "graph";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    const int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);  // the writer then opens at once
    REQUIRE(reader >= 0);
    Tape<double> tape;
    const Var<double> y = sum(tanh(tape.leaf(Matrix<double>{{0.5, -0.2}})));
    save_dot(path, tape, y);  // far less than a pipe holds: written whole before it is read
    std::string received;
    char buffer[4096];
    for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;) received.append(buffer, std::size_t(n));
    ::close(reader);
    CHECK(received == to_dot(tape, y));
    CHECK(std::filesystem::is_fifo(path));
}

// A descriptor's name (/dev/stdout, /proc/self/fd/N) may reach a regular file through a shell
// redirection (notebook_mlp --dot /dev/stdout > graph.dot): renaming a new file over it left
// the descriptor writing to the old file, which no name reached any more.
TEST_CASE("save_dot to a descriptor's name writes into the file the descriptor holds", "[dot]") {
    test_support::TempDir tmp("save-dot-descriptor");
    const std::filesystem::path file = tmp.path / "graph.dot";
    std::ofstream(file) << "old";
    const int fd = ::open(file.c_str(), O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    struct stat before {};
    REQUIRE(::stat(file.c_str(), &before) == 0);
    Tape<double> tape;
    const Var<double> y = sum(tanh(tape.leaf(Matrix<double>{{0.5, -0.2}})));
    save_dot("/proc/self/fd/" + std::to_string(fd), tape, y);
    ::close(fd);
    struct stat after {};
    REQUIRE(::stat(file.c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);  // the same file, not one renamed over it
    CHECK(test_support::read_file(file) == to_dot(tape, y));
}
