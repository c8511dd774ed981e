// The C++ half of the NumPy interop test (check_forward_prop.py is the other):
// trains the notebook's 5-10-10-4 network with tapegrad, saves it with nn::save_model
// (OUT/model/W1.npy ... b3.npy), and writes the inputs and tapegrad's predictions
// (softmax of the logits, classes x examples) as OUT/X.npy and OUT/predictions.npy.
//   usage: interop_write_predictions OUT

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <xtensor/xnpy.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/mlp.hpp"
#include "nn/io/model_checkpoint.hpp"
#include "nn/notebook/notebook_backprop.hpp"
#include "nn/optimizers.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    const std::filesystem::path out = argv[1];
    std::filesystem::create_directories(out);

    // The notebook's data, He-initialised weights (seed 1), then 300 SGD steps, so the
    // weights saved are trained ones, not the tiny initial values.
    const auto notebook = nn::notebook::notebook_execution<double>();
    nn::MLP<double> net(nn::notebook::notebook_layer_sizes, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<double> opt(net.parameters(), 0.5);
    autodiff::Tape<double> tape;
    for (int step = 0; step < 300; ++step) {
        tape.reset();
        tape.backward(autodiff::softmax_cross_entropy(net(tape, notebook.X), notebook.Y));
        opt.step();
        net.zero_grad();
    }
    nn::save_model(out / "model", net, opt, 300);

    // Predictions on the notebook's X and on 200 fresh examples, some far from it.
    nn::NumpyRandom rng(2024);
    const autodiff::Matrix<double> fresh = rng.randn(5, 200) * 3.0;
    autodiff::Matrix<double> X = xt::concatenate(xt::xtuple(notebook.X, fresh), 1);
    tape.reset();
    autodiff::NoGrad<double> no_grad(tape);
    const autodiff::Matrix<double> predictions = autodiff::softmax(net(tape, X)).value();
    xt::dump_npy((out / "X.npy").string(), X);
    xt::dump_npy((out / "predictions.npy").string(), predictions);
    std::printf("wrote %s: model/, X.npy (5x%zu), predictions.npy (4x%zu)\n", out.c_str(), X.shape()[1],
                predictions.shape()[1]);
    return 0;
}
