// Defines two ops outside tapegrad's sources, checks their gradients with
// autodiff::gradcheck, then trains a small classifier on the Iris data with them:
//   logits = W2 layer_norm(softplus(W1 X + b1)) + b2
//
//   softplus    examples/ops/softplus.hpp    autodiff::apply (autodiff/custom_op.hpp)
//   layer_norm  examples/ops/layer_norm.hpp  Tape::record, as the built-in ops are written
//
// docs/custom_ops.md walks through both. Exits 1 if a gradient check fails.

#include <cstdio>

#include "autodiff/autodiff.hpp"
#include "nn/data/csv.hpp"
#include "nn/linear.hpp"
#include "nn/optimizers.hpp"
#include "ops/layer_norm.hpp"
#include "ops/softplus.hpp"
#include "support/guarded_main.hpp"

using autodiff::Matrix;
using autodiff::Tape;
using autodiff::Var;

namespace {

int run() {
    // 1. Gradient checks, in double, against central differences.
    const Matrix<double> x = {{-3.0, -0.5, 0.2, 4.0}, {1.5, -1.0, 0.7, -2.0}, {0.3, 2.0, -0.1, 0.9}};
    const auto softplus_check = autodiff::gradcheck<double>(
        [](Tape<double>&, const std::vector<Var<double>>& in) { return example::softplus(in[0]); }, {x});
    const auto layer_norm_check = autodiff::gradcheck<double>(
        [](Tape<double>&, const std::vector<Var<double>>& in) { return example::layer_norm(in[0]); }, {x});
    std::printf("gradcheck softplus:   %s\n", softplus_check.summary().c_str());
    std::printf("gradcheck layer_norm: %s\n", layer_norm_check.summary().c_str());
    if (!softplus_check.passed || !layer_norm_check.passed) return 1;

    // 2. Training with the new ops next to the built-in ones (full batch, Adam).
    const nn::Dataset<double> data = nn::iris<double>();
    nn::NumpyRandom rng(0);
    nn::Linear<double> hidden(4, 16, nn::Init::glorot, rng, "hidden");
    nn::Linear<double> output(16, 3, nn::Init::glorot, rng, "output");
    nn::Adam<double> opt({&hidden.W, &hidden.b, &output.W, &output.b}, 0.05);
    Tape<double> tape;
    double loss_value = 0;
    for (int step = 0; step <= 200; ++step) {
        tape.reset();
        Var<double> X = tape.constant(data.features);
        Var<double> logits = output(example::layer_norm(example::softplus(hidden(X))));
        Var<double> loss = autodiff::softmax_cross_entropy(logits, data.labels);
        tape.backward(loss);
        opt.step();
        opt.zero_grad();
        loss_value = loss.value()(0, 0);
        if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, loss_value);
    }
    std::printf("final loss %.4f\n", loss_value);
    return loss_value < 0.2 ? 0 : 1;
}

}  // namespace

int main() {
    return example::guarded_main("custom_op", run);
}
