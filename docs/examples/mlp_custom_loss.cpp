// docs/guide.md, example 2: an nn::MLP trained with a loss of one's own, built from ops:
// cross-entropy with label smoothing, -sum(Y_smooth * log_softmax(Z)) / m.
// With smoothing 0 it must equal the engine's fused softmax_cross_entropy, value and
// gradients; the program checks that, then trains on Iris. Exits 1 on any failure.

#include <cmath>
#include <cstdio>

#include "autodiff/autodiff.hpp"
#include "nn/data/csv.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"

using autodiff::Matrix;
using autodiff::Tape;
using autodiff::Var;

// Y is one-hot, classes x examples; each column becomes (1 - s) Y + s / classes.
Var<double> smoothed_cross_entropy(Var<double> logits, const Matrix<double>& Y, double smoothing) {
    const double classes = double(Y.shape()[0]), m = double(Y.shape()[1]);
    Matrix<double> target = (1.0 - smoothing) * Y + smoothing / classes;
    Var<double> T = logits.tape().constant(target);
    return sum(T * log_softmax(logits)) * (-1.0 / m);
}

Matrix<double> one_hot(const autodiff::Labels& labels, std::size_t classes) {
    Matrix<double> Y({classes, labels.size()}, 0.0);
    for (std::size_t j = 0; j < labels.size(); ++j) Y(labels[j], j) = 1.0;
    return Y;
}

int main() {
    const nn::Dataset<double> iris = nn::iris<double>();
    const Matrix<double> Y = one_hot(iris.labels, iris.classes);
    nn::MLP<double> net({4, 16, 3}, nn::Activation::tanh, nn::Init::glorot, 0);

    // 1. With no smoothing the hand-built loss is the fused one: same value, same gradients.
    const auto with = [&](auto loss_of) {
        return autodiff::value_and_grad<double>(
            [&](Tape<double>& tape) { return loss_of(net(tape, iris.features)); }, net.parameters());
    };
    const auto ours = with([&](Var<double> z) { return smoothed_cross_entropy(z, Y, 0.0); });
    const auto fused = with([&](Var<double> z) { return autodiff::softmax_cross_entropy(z, Y); });
    double worst = std::abs(ours.value - fused.value);
    for (std::size_t i = 0; i < ours.grads.size(); ++i)
        worst = std::max(worst, double(xt::amax(xt::abs(ours.grads[i] - fused.grads[i]))()));
    std::printf("smoothing 0 vs softmax_cross_entropy: worst difference %.2e\n", worst);
    if (worst > 1e-12) return 1;

    // 2. Training with smoothing 0.1 (Adam, full batch).
    nn::Adam<double> opt(net.parameters(), 0.02);
    Tape<double> tape;
    double loss_value = 0;
    for (int step = 0; step < 300; ++step) {
        tape.reset();
        Var<double> loss = smoothed_cross_entropy(net(tape, iris.features), Y, 0.1);
        tape.backward(loss);
        opt.step();
        net.zero_grad();
        loss_value = loss.value()(0, 0);
    }

    tape.reset();
    autodiff::NoGrad<double> no_grad(tape);
    const Matrix<double>& logits = net(tape, iris.features).value();
    std::size_t right = 0;
    for (std::size_t j = 0; j < iris.size(); ++j) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < iris.classes; ++k)
            if (logits(k, j) > logits(best, j)) best = k;
        right += best == iris.labels[j];
    }
    const double accuracy = double(right) / double(iris.size());
    std::printf("loss %.4f, training accuracy %.3f\n", loss_value, accuracy);
    return accuracy > 0.95 ? 0 : 1;
}
