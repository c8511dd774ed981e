// Trains the notebook's 5-10-10-4 network for a few steps and saves it: proof that the
// headers, the libraries and their dependencies (xtensor, OpenBLAS, zlib) all arrive.
#include <cstdio>
#include <filesystem>

#include <autodiff/autodiff.hpp>
#include <nn/mlp.hpp>
#include <nn/io/model_checkpoint.hpp>
#include <nn/notebook/notebook_backprop.hpp>
#include <nn/optimizers.hpp>

int main() {
    const auto notebook = nn::notebook::notebook_execution<double>();
    nn::MLP<double> net({5, 10, 10, 4}, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<double> opt(net.parameters(), 0.5);
    autodiff::Tape<double> tape;
    double first = 0, last = 0;
    for (int step = 0; step < 50; ++step) {
        tape.reset();
        auto loss = autodiff::softmax_cross_entropy(net(tape, notebook.X), notebook.Y);
        tape.backward(loss);
        opt.step();
        net.zero_grad();
        last = loss.value()(0, 0);
        if (step == 0) first = last;
    }
    std::printf("consumer: loss %.4f -> %.4f\n", first, last);
    // Checkpoints use zlib's CRC32, which libtapegrad_nn links privately.
    const auto dir = std::filesystem::temp_directory_path() / "tapegrad_consumer_checkpoint";
    nn::save_model(dir, net, opt, 1);
    const auto loaded = nn::load_model<double>(dir);
    std::filesystem::remove_all(dir);
    const bool same = loaded.net->layers[0].W.value == net.layers[0].W.value;
    return (last < first && same) ? 0 : 1;
}
