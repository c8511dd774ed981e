// One exception family: whatever tapegrad throws for bad input, engine or nn, a caller
// catches through autodiff::Error, and the subclasses still tell the kinds apart.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "nn/activation.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/data/split.hpp"
#include "nn/init.hpp"
#include "nn/io/atomic_file.hpp"
#include "nn/io/checkpoint.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/non_finite.hpp"
#include "nn/notebook/notebook_backprop.hpp"
#include "nn/numpy_random.hpp"
#include "nn/optimizers.hpp"
#include "nn/schedule.hpp"
#include "nn/training.hpp"
#include "../nn/temp_dir.hpp"

using namespace autodiff;
namespace fs = std::filesystem;

namespace {

struct Mistake {
    const char* what;
    std::function<void()> make;
};

// Throws whatever `make` throws; fails the test if it is not an autodiff::Error.
void require_caught_through_base(const Mistake& m) {
    INFO(m.what);
    bool caught = false;
    try {
        m.make();
    } catch (const Error& e) {
        caught = true;
        CHECK(std::string(e.what()).size() > 0);
    } catch (const std::exception& e) {
        FAIL_CHECK("threw a " << typeid(e).name() << " that is no autodiff::Error: " << e.what());
        return;
    }
    CHECK(caught);
}

}  // namespace

TEST_CASE("every kind of bad input throws something caught as autodiff::Error", "[hardening][errors]") {
    test_support::TempDir tmp("error-family");
    { std::ofstream(tmp.file("a_file")) << "not a directory"; }
    const nn::Dataset<double> iris = nn::iris<double>();
    Parameter<double> W(Matrix<double>({2, 2}, 1.0), "W");
    nn::MLP<double> net({4, 3});
    nn::SGD<double> sgd({&W}, 0.1);
    const std::vector<Mistake> mistakes = {
        // The engine.
        {"an op's shapes", [] { Tape<double> t; matmul(t.leaf(Matrix<double>({2, 3}, 1.0)), t.leaf(Matrix<double>({2, 3}, 1.0))); }},
        {"anomaly", [] { Tape<double> t; t.set_detect_anomaly(true); t.constant(Matrix<double>({1, 1}, NAN)); }},
        // nn: options, shapes and indices.
        {"unknown activation", [] { nn::activation_from_string("swish"); }},
        {"unknown initialiser", [] { nn::init_from_string("xavier"); }},
        {"unknown schedule", [] { nn::schedule_from_string("exponential"); }},
        {"unknown optimizer", [&] { nn::make_optimizer<double>("rmsprop", {&W}, 0.1, 0.9); }},
        {"layer of 0 units", [] { nn::MLP<double>({4, 0, 3}); }},
        {"bias of the wrong shape", [] { nn::Linear<double>(Matrix<double>({3, 2}, 0.0), Matrix<double>({2, 1}, 0.0), "L"); }},
        {"input of the wrong size", [&] { Tape<double> t; net(t.constant(Matrix<double>({5, 1}, 0.0))); }},
        {"optimizer state that does not fit", [&] { sgd.load_state({{"velocity", Matrix<double>({1, 1}, 0.0)}}); }},
        {"batch size 0", [&] { nn::Trainer<double>(net, sgd, 0, 1); }},
        {"example index out of range", [&] {
             Matrix<double> X;
             Labels y;
             const std::size_t bad[] = {150};
             nn::gather_batch(iris, bad, 1, X, y);
         }},
        {"loader index out of range", [&] {
             Matrix<double> X;
             Labels y;
             const std::size_t bad[] = {150};
             nn::DataLoader<double>(iris).gather(bad, 1, X, y);
         }},
        {"split fraction", [&] { nn::train_test_split(iris, 1.5, 1); }},
        {"NumpyRandom range", [] { nn::NumpyRandom(0).choice(0, 3); }},
        {"notebook shapes", [] {
             nn::NumpyRandom rng(1);
             nn::notebook::forward_prop<double>(Matrix<double>({4, 2}, 0.0),
                                                nn::notebook::init_parameters<double>(rng, {5, 3}));
         }},
        {"array name unfit for a file", [&] {
             nn::Checkpoint c;
             c.arrays["../x"] = xt::xtensor<double, 2>{{1.0}};
             nn::save_checkpoint(tmp.path / "ckpt", c);
         }},
        // nn: data.
        {"malformed CSV", [] {
             std::istringstream in("1,2,0\n3,x,1\n");
             nn::parse_csv_dataset<double>(in, "bad.csv");
         }},
        {"missing checkpoint", [&] { nn::load_checkpoint(tmp.path / "nothing"); }},
        {"a run that diverged", [] { nn::check_finite_evaluation<double>(NAN, {}); }},
        // nn: the file system.
        {"checkpoint under a regular file", [&] { nn::save_checkpoint(tmp.path / "a_file" / "ckpt", nn::Checkpoint{}); }},
        {"atomic write under a regular file", [&] {
             nn::write_file_atomically(tmp.path / "a_file" / "x.txt", [](std::ostream& out) { out << 1; });
         }},
    };
    for (const Mistake& m : mistakes) require_caught_through_base(m);
}

TEST_CASE("the subclasses still tell data, file system and anomaly apart", "[hardening][errors]") {
    test_support::TempDir tmp("error-kinds");
    { std::ofstream(tmp.file("a_file")) << "not a directory"; }
    CHECK_THROWS_AS(nn::load_checkpoint(tmp.path / "nothing"), nn::DataError);
    CHECK_THROWS_AS(nn::save_checkpoint(tmp.path / "a_file" / "ckpt", nn::Checkpoint{}), nn::IoError);
    CHECK_THROWS_AS(nn::write_file_atomically(tmp.path / "a_file" / "x.txt", [](std::ostream& out) { out << 1; }),
                    nn::IoError);
    Tape<double> t;
    t.set_detect_anomaly(true);
    CHECK_THROWS_AS(t.leaf(Matrix<double>({1, 1}, INFINITY)), AnomalyError);
}
