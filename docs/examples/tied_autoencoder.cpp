// docs/guide.md, example 4: an autoencoder with tied weights. The decoder uses the encoder's
// W transposed, so one parameter appears twice on the tape and its gradient is the sum of
// both uses. The model registers W once; gradcheck confirms the summed gradient.
// Exits 1 if the gradient is wrong or the reconstruction error does not drop by half.

#include <cstdio>

#include <xtensor/xview.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/data/csv.hpp"
#include "nn/module.hpp"
#include "nn/numpy_random.hpp"
#include "nn/optimizers.hpp"

using autodiff::Matrix;
using autodiff::Var;

struct TiedAutoencoder : nn::Module<double> {
    // Declaring is registering: these are the model's "W", "b_enc" and "b_dec".
    autodiff::Parameter<double>& W = add_parameter("W", nn::NumpyRandom(3).randn(2, 4) * 0.5);  // 2 x 4: code x input
    autodiff::Parameter<double>& b_enc = add_parameter("b_enc", xt::zeros<double>({2, 1}));
    autodiff::Parameter<double>& b_dec = add_parameter("b_dec", xt::zeros<double>({4, 1}));

    Var<double> forward(Var<double> x) override { return reconstruct(x.tape().parameter(W), x); }

    // w is W's handle on the tape: the same handle feeds the encoder and, transposed, the decoder.
    Var<double> reconstruct(Var<double> w, Var<double> x) {
        autodiff::Tape<double>& tape = x.tape();
        Var<double> code = tanh(linear(w, x, tape.parameter(b_enc)));  // 2 x m
        return linear(transpose(w), code, tape.parameter(b_dec));       // W used again: 4 x m
    }
};

int main() {
    const nn::Dataset<double> iris = nn::iris<double>();
    // Centre each feature, so the biases start near their optimum.
    const Matrix<double> means = xt::eval(xt::mean(iris.features, {1}, xt::keep_dims | xt::evaluation_strategy::immediate));
    const Matrix<double> X = iris.features - means;

    TiedAutoencoder model;
    std::printf("parameters:");
    for (const auto& p : model.named_parameters()) std::printf(" %s", p.name.c_str());
    std::printf("\n");

    // The gradient of W sums its two uses: checked against central differences.
    autodiff::Tape<double> tape;
    const Matrix<double> batch = xt::view(X, xt::all(), xt::range(0, 5));
    const autodiff::GradcheckResult check = autodiff::gradcheck<double>(
        [&](autodiff::Tape<double>& t, const std::vector<Var<double>>& in) {
            return autodiff::mse(model.reconstruct(in[0], t.constant(batch)), t.constant(batch));
        },
        {model.W.value});
    std::printf("gradcheck of the tied W: %s\n", check.summary().c_str());

    nn::Adam<double> adam(model.parameters(), 0.01);
    double first = 0, last = 0;
    for (int step = 0; step < 500; ++step) {
        tape.reset();
        Var<double> loss = autodiff::mse(model(tape.constant(X)), tape.constant(X));
        tape.backward(loss);
        adam.step();
        adam.zero_grad();
        (step == 0 ? first : last) = loss.value()(0, 0);
    }
    std::printf("reconstruction MSE: %.4f -> %.4f\n", first, last);
    return check.passed && last < first / 2 ? 0 : 1;
}
