// The notebook's execution cell (seed/000: "NN forward/backward prop with NumPy"), on
// tapegrad: the same seed, data and network, with the backward pass derived by the tape
// instead of written by hand, then proven equal to the hand-written one.
//
//   notebook_mlp                 the notebook's run, printed as NumPy prints it
//   notebook_mlp --steps 200     keep training, printing the loss as it goes

#include <cmath>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "autodiff/autodiff.hpp"
#include "autodiff/dot.hpp"
#include "nn/mlp.hpp"
#include "nn/non_finite.hpp"
#include "nn/notebook/notebook_backprop.hpp"
#include "nn/notebook/numpy_format.hpp"
#include "nn/optimizers.hpp"
#include "support/guarded_main.hpp"
#include "support/output_paths.hpp"

using autodiff::Matrix;

namespace {

std::vector<Matrix<double>> parameters_tuple(const nn::MLP<double>& net) {  // (W1, b1, W2, b2, W3, b3)
    std::vector<Matrix<double>> p;
    for (const auto& layer : net.layers) {
        p.push_back(layer.W.value);
        p.push_back(layer.b.value);
    }
    return p;
}

// The notebook's backward_prop over the same parameters, against what the tape derived.
double largest_gradient_difference(const nn::MLP<double>& net, const std::vector<Matrix<double>>& initial,
                                   const Matrix<double>& X, const Matrix<double>& Y) {
    nn::notebook::Parameters<double> parameters;
    for (std::size_t i = 0; i < initial.size(); i += 2) {
        parameters.W.push_back(initial[i]);
        parameters.b.push_back(initial[i + 1]);
    }
    const auto forwardpass_activations = nn::notebook::forward_prop(X, parameters);
    const auto gradients = nn::notebook::backward_prop(X, Y, parameters, forwardpass_activations);
    double worst = 0;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
        worst = std::max(worst, double(xt::amax(xt::abs(net.layers[l].W.grad - gradients.dW[l]))()));
        worst = std::max(worst, double(xt::amax(xt::abs(net.layers[l].b.grad - gradients.db[l]))()));
    }
    return worst;
}

}  // namespace

int main(int argc, char** argv) {
    int steps = 1;
    double learning_rate = 0.01;
    std::string dot_file;
    CLI::App app{"The notebook's 5-10-10-4 network, its run reproduced on tapegrad."};
    app.add_option("--steps", steps, "SGD steps to take (the notebook takes 1)")->check(CLI::Range(1, 1 << 30))->capture_default_str();
    app.add_option("--lr", learning_rate, "learning rate")->capture_default_str();
    app.add_option("--dot", dot_file, "write the first step's tape as a Graphviz DOT graph (dot -Tsvg FILE)");
    CLI11_PARSE(app, argc, argv);
    if (!(std::isfinite(learning_rate) && learning_rate > 0)) {
        std::cerr << "notebook_mlp: --lr must be a positive finite number, got " << learning_rate << "\n";
        return 2;
    }
    return example::guarded_main("notebook_mlp", [&] {
        example::check_output_file(dot_file, "--dot");
        example::check_graph_target(dot_file, "--dot");

        nn::NumpyRandom np_random(1);                                   // np.random.seed(1)
        const Matrix<double> X = np_random.rand(5, 10);                 // 5 features and 10 training examples
        const Matrix<double> Y = nn::notebook::one_hot<double>(np_random.choice(4, 10), 4);  // np.eye(4)[choice(4, 10)].T

        np_random.seed(1);                                              // init_parameters() reseeds
        nn::MLP<double> net({5, 10, 10, 4}, nn::Activation::relu, nn::Init::notebook, np_random);
        const std::vector<Matrix<double>> parameters = parameters_tuple(net);
        std::printf("Intial parameters -  %s\n", nn::tuple_repr(parameters).c_str());

        nn::SGD<double> sgd(net.parameters(), learning_rate);
        autodiff::Tape<double> tape;
        auto Z3 = net(tape, X);                                          // forward_prop
        const Matrix<double> A3 = autodiff::softmax(Z3).value();
        auto loss = autodiff::softmax_cross_entropy(Z3, Y);
        tape.backward(loss);                                             // backward_prop, by the tape
        if (!dot_file.empty())
            autodiff::save_dot(dot_file, tape, loss, {"The notebook's 5-10-10-4 network on the tape (one training step)"});
        const double gradient_gap = largest_gradient_difference(net, parameters, X, Y);
        sgd.step();                                                      // update_parameters
        // A rate too large (--lr 1e300) makes the weights NaN within a step or two: stop with
        // the step and the parameter, as train_mlp does, rather than print "loss nan" to the end.
        nn::check_finite_step(loss.value()(0, 0), net.parameters(), {0, 0});

        std::printf("Output after one forward pass: %s\n", nn::array_str(A3).c_str());
        std::printf("Updated parameters after 1st pass -  %s\n", nn::tuple_repr(parameters_tuple(net)).c_str());
        std::printf("\nLargest difference between the tape's gradients and the notebook's hand-written ones: %.3g\n",
                    gradient_gap);

        for (int step = 1; step < steps; ++step) {
            sgd.zero_grad();
            tape.reset();
            auto loss = autodiff::softmax_cross_entropy(net(tape, X), Y);
            tape.backward(loss);
            sgd.step();
            nn::check_finite_step(loss.value()(0, 0), net.parameters(), {std::size_t(step), 0});  // each step is an epoch
            if (step % std::max(1, steps / 10) == 0 || step == steps - 1)
                std::printf("step %d: loss %.8f\n", step + 1, loss.value()(0, 0));
        }
        return 0;
    });
}
