// A run that goes non-finite stops with an error that says where and what to try, and never
// reaches a checkpoint (issue 10, item 2): the trainer checks the loss and every parameter
// after each step; save_checkpoint refuses non-finite arrays; load_checkpoint refuses them.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "../fuzz/manifest_support.hpp"
#include "../nn/temp_dir.hpp"
#include "nn/data/csv.hpp"
#include "nn/io/checkpoint.hpp"
#include "nn/io/model_checkpoint.hpp"
#include "nn/non_finite.hpp"
#include "nn/training.hpp"

#include <xtensor/xnpy.hpp>

using Catch::Matchers::Contains;
using test_support::TempDir;
namespace fs = std::filesystem;

TEST_CASE("a learning rate that blows the weights up stops training, naming epoch, batch and parameter",
          "[hardening][non_finite]") {
    const nn::Dataset<double> iris = nn::iris<double>();
    nn::MLP<double> net({4, 16, 3}, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<double> sgd(net.parameters(), 1e300);
    nn::Trainer<double> trainer(net, sgd, 16, 0);
    const nn::DataLoader<double> batches(iris);
    CHECK_THROWS_MATCHES(trainer.train_epoch(batches, 0), nn::TrainingDiverged,
                         Catch::Matchers::Predicate<nn::TrainingDiverged>([](const nn::TrainingDiverged& e) {
                             const std::string m = e.what();
                             return m.find("epoch 1") != std::string::npos && m.find("batch ") != std::string::npos &&
                                    m.find("learning rate") != std::string::npos &&
                                    (m.find("layer") != std::string::npos || m.find("loss") != std::string::npos);
                         }));
}

TEST_CASE("a run that diverges with gradient clipping on stops as one without it", "[hardening][non_finite]") {
    // Clipping ran before the step's checks and took the loss's NaN gradients for a misuse of
    // its own: an autodiff::Error ('clip_grad_norm: the gradient of 'layer1.W' holds -nan'), not
    // a TrainingDiverged naming the epoch and the batch, which a program may catch to retry.
    nn::MLP<double> net({4, 16, 3}, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<double> sgd(net.parameters(), 1e300);
    nn::Trainer<double> trainer(net, sgd, 16, 0);
    trainer.set_clip_grad_norm(1.0);
    CHECK_THROWS_MATCHES(trainer.train_epoch(nn::DataLoader<double>(nn::iris<double>()), 0), nn::TrainingDiverged,
                         Catch::Matchers::Predicate<nn::TrainingDiverged>([](const nn::TrainingDiverged& e) {
                             const std::string m = e.what();
                             return m.find("epoch 1, batch 2: the loss is not finite") != std::string::npos;
                         }));
}

TEST_CASE("finite but huge features stop training instead of giving loss nan", "[hardening][non_finite]") {
    nn::Dataset<float> data = nn::iris<float>();
    data.features *= 3e38f / 8.0f;  // all finite: check_dataset accepts them
    nn::check_dataset(data, "training data");
    nn::MLP<float> net({4, 8, 3}, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<float> sgd(net.parameters(), 0.01f);
    nn::Trainer<float> trainer(net, sgd, 150, 0);
    CHECK_THROWS_WITH(trainer.train_epoch(nn::DataLoader<float>(data), 4),
                      Contains("epoch 5") && Contains("batch 1") && Contains("not finite") &&
                          Contains("scale the input"));
    // Evaluating finite weights on such data: no "loss nan" either.
    nn::MLP<float> fresh({4, 8, 3}, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<float> unused(fresh.parameters(), 0.01f);
    CHECK_THROWS_WITH(nn::Trainer<float>(fresh, unused, 150, 0).evaluate(nn::DataLoader<float>(data)),
                      Contains("evaluation") && Contains("not finite") && Contains("scale them"));
}

TEST_CASE("check_finite_step names the first non-finite parameter and where", "[hardening][non_finite]") {
    autodiff::Parameter<double> W(autodiff::Matrix<double>{{1.0, 2.0}, {3.0, std::nan("")}}, "layer2.W");
    autodiff::Parameter<double> b(autodiff::Matrix<double>{{0.0}, {0.0}}, "layer2.b");
    CHECK_NOTHROW(nn::check_finite_step<double>(0.5, {&b}, {2, 7}));
    CHECK_THROWS_WITH(nn::check_finite_step<double>(0.5, {&b, &W}, {2, 7}),
                      Contains("epoch 3") && Contains("batch 8") && Contains("layer2.W") && Contains("row 1") &&
                          Contains("column 1"));
    CHECK_THROWS_WITH(nn::check_finite_step<double>(std::numeric_limits<double>::infinity(), {&b}, {0, 0}),
                      Contains("loss") && Contains("inf"));
}

TEST_CASE("non-finite weights are never saved, and refused when loaded", "[hardening][non_finite]") {
    TempDir tmp("nonfinite");
    const fs::path dir = tmp.path / "model";
    nn::Checkpoint good;
    good.arrays["W"] = xt::xtensor<float, 2>{{1.0f, 2.0f}};
    nn::save_checkpoint(dir, good);

    nn::Checkpoint bad;
    bad.arrays["W"] = xt::xtensor<float, 2>{{1.0f, std::numeric_limits<float>::infinity()}};
    CHECK_THROWS_WITH(nn::save_checkpoint(dir, bad), Contains("W") && Contains("not finite"));
    CHECK(nn::load_checkpoint(dir).array<float>("W")(0, 1) == 2.0f);  // the good one stays

    // One written by another tool (NumPy) with a NaN, checksums all right.
    const std::string npy = xt::dump_npy(xt::xtensor<float, 2>{{1.0f, std::nanf("")}});
    std::ofstream(dir / "W.npy", std::ios::binary | std::ios::trunc) << npy;
    std::ofstream(dir / "manifest.json", std::ios::binary | std::ios::trunc)
        << fuzz::manifest_with_crc(fuzz::manifest_body("", fuzz::array_entry("W", "<f4", 1, 2, npy)));
    CHECK_THROWS_WITH(nn::load_checkpoint(dir), Contains((dir / "W.npy").string()) && Contains("not finite"));
}
