// docs/guide.md, example 1: logistic regression written from the engine's ops alone.
// Is an Iris flower a setosa? p = sigmoid(w x + b), loss = binary cross-entropy.
// Exits 1 if the gradients disagree with finite differences or the model does not learn.

#include <cstdio>

#include "autodiff/autodiff.hpp"
#include "nn/data/csv.hpp"
#include "nn/optimizers.hpp"

using autodiff::Matrix;
using autodiff::Parameter;
using autodiff::Tape;
using autodiff::Var;

// -mean(y log p + (1 - y) log(1 - p)), every piece a tape op; y is 1 x m, 0 or 1.
Var<double> binary_cross_entropy(Var<double> p, Var<double> y) {
    Tape<double>& tape = p.tape();
    Var<double> one = tape.constant(Matrix<double>{{1.0}});  // 1x1 broadcasts over 1 x m
    return -mean(y * log(p) + (one - y) * log(one - p));
}

int main() {
    // Features x examples, as everywhere in tapegrad: X is 4 x 150, y is 1 x 150.
    const nn::Dataset<double> iris = nn::iris<double>();
    const std::size_t m = iris.size();
    Matrix<double> y({1, m});
    for (std::size_t j = 0; j < m; ++j) y(0, j) = iris.labels[j] == 0 ? 1.0 : 0.0;

    // The model's parameters: they outlive every tape and accumulate gradients.
    Parameter<double> w(Matrix<double>({1, 4}, 0.0), "w");
    Parameter<double> b(Matrix<double>({1, 1}, 0.0), "b");

    // Before training on it, check the loss's gradient against central differences.
    const auto check = autodiff::gradcheck<double>(
        [&](Tape<double>& tape, const std::vector<Var<double>>& in) {
            return binary_cross_entropy(sigmoid(linear(in[0], tape.constant(iris.features), in[1])), tape.constant(y));
        },
        {Matrix<double>{{0.1, -0.2, 0.3, -0.1}}, Matrix<double>{{0.05}}});
    std::printf("gradcheck: %s\n", check.summary().c_str());
    if (!check.passed) return 1;

    nn::SGD<double> opt({&w, &b}, 0.1);
    Tape<double> tape;
    double loss_value = 0;
    for (int step = 0; step < 300; ++step) {
        tape.reset();  // keeps the buffers: no allocation after the first step
        Var<double> p = sigmoid(linear(tape.parameter(w), tape.constant(iris.features), tape.parameter(b)));
        Var<double> loss = binary_cross_entropy(p, tape.constant(y));
        tape.backward(loss);  // w.grad and b.grad now hold d loss / d w, d loss / d b
        opt.step();           // w -= 0.1 * w.grad, ...
        opt.zero_grad();
        loss_value = loss.value()(0, 0);  // keep the value, not the handle, across steps
    }

    // Inference: NoGrad records values only.
    tape.reset();
    autodiff::NoGrad<double> no_grad(tape);
    const Matrix<double>& p = sigmoid(linear(tape.parameter(w), tape.constant(iris.features), tape.parameter(b))).value();
    std::size_t right = 0;
    for (std::size_t j = 0; j < m; ++j) right += (p(0, j) > 0.5) == (y(0, j) == 1.0);
    const double accuracy = double(right) / double(m);
    std::printf("loss %.4f, accuracy %.3f\n", loss_value, accuracy);
    return accuracy > 0.95 ? 0 : 1;
}
