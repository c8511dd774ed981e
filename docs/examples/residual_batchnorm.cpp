// docs/guide.md, example 5: a model of one's own with a residual connection, batch norm and
// dropout, trained on Iris by nn::Trainer, saved and loaded by name with nn::save / nn::load.
// train() / eval() switch batch norm between batch and running statistics and turn dropout
// on and off; the checkpoint holds the running statistics and the dropout counter too.
// Exits 1 unless it reaches 90% held-out accuracy and the reloaded model predicts the same.

#include <cstdio>
#include <filesystem>

#include "nn/data/csv.hpp"
#include "nn/data/split.hpp"
#include "nn/dropout.hpp"
#include "nn/io/module_checkpoint.hpp"
#include "nn/linear.hpp"
#include "nn/normalization.hpp"
#include "nn/training.hpp"

using autodiff::Var;

// x + W2 relu(bn(W1 x)): the block's output keeps its input's width.
struct ResidualBlock : nn::Module<double> {
    nn::Linear<double> inner, outer;
    nn::BatchNorm<double> norm;
    ResidualBlock(std::size_t width, std::uint32_t seed) : inner(width, width, seed), outer(width, width, seed + 1), norm(width) {
        register_modules({{"inner", inner}, {"norm", norm}, {"outer", outer}});
    }
    Var<double> forward(Var<double> x) override { return x + outer(relu(norm(inner(x)))); }
};

struct Classifier : nn::Module<double> {
    nn::Linear<double> stem{4, 16, 1u};
    ResidualBlock block{16, 2};
    nn::Dropout<double> drop{0.1, 3};
    nn::Linear<double> head{16, 3, 4u};
    Classifier() { register_modules({{"stem", stem}, {"block", block}, {"drop", drop}, {"head", head}}); }
    Var<double> forward(Var<double> x) override { return head(drop(block(relu(stem(x))))); }
};

int main() {
    const auto [train_set, test_set] = nn::train_test_split(nn::iris<double>(), 0.2, 0);
    const nn::DataLoader<double> train(train_set), test(test_set);

    Classifier model;
    for (const auto& p : model.named_parameters()) std::printf("%s ", p.name.c_str());  // stem.W ... block.norm.gain ...
    std::printf("\n");
    nn::AdamW<double> adamw(model.parameters(), 0.01, /*weight_decay=*/1e-3);
    nn::Trainer<double> trainer(model, adamw, 16, 0);
    const auto history = trainer.fit(train, test, 0, 60);
    const double accuracy = history.back().test.accuracy;
    std::printf("held-out accuracy after 60 epochs: %.4f\n", accuracy);

    // Save, load into a fresh model, and compare the predictions in evaluation mode.
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / "tapegrad-doc-residual";
    std::filesystem::remove_all(dir);
    nn::save(dir, model, adamw, {{"epoch", "60"}});
    Classifier reloaded;
    nn::AdamW<double> reloaded_adamw(reloaded.parameters(), 0.01, 1e-3);
    nn::load(dir, reloaded, reloaded_adamw);
    std::filesystem::remove_all(dir);
    nn::Trainer<double> reloaded_trainer(reloaded, reloaded_adamw, 16, 0);
    const bool same = reloaded_trainer.evaluate(test).loss == trainer.evaluate(test).loss;
    std::printf("reloaded model predicts the same: %s\n", same ? "yes" : "no");
    return accuracy >= 0.9 && same ? 0 : 1;
}
