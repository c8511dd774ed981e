// tapegrad's engine through nn: the step a user writes (record, backward, SGD, zero_grad).

#include "harness.hpp"

#include "autodiff/autodiff.hpp"
#include "engine_matrix.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"

namespace {

using bench::matrix;

template <class T>
class TapegradStep {
public:
    explicit TapegradStep(const bench::Problem<T>& p)
        : net_(p.sizes, nn::Activation::relu, nn::Init::he, 0),
          X_(matrix(p.X, p.sizes.front(), p.m)),
          Y_(matrix(p.Y, p.sizes.back(), p.m)),
          sgd_(net_.parameters(), p.lr) {
        for (std::size_t l = 0; l < p.layers(); ++l) {
            net_.layers[l].W.value = matrix(p.W[l], p.sizes[l + 1], p.sizes[l]);
            net_.layers[l].b.value = matrix(p.b[l], p.sizes[l + 1], 1);
        }
    }

    void step() {
        tape_.reset();
        autodiff::Var<T> loss = autodiff::softmax_cross_entropy(net_(tape_, X_), Y_);
        tape_.backward(loss);
        loss_ = double(loss.value()(0, 0));
        sgd_.step();
        sgd_.zero_grad();
    }

    double loss() const { return loss_; }

private:
    nn::MLP<T> net_;
    autodiff::Matrix<T> X_, Y_;
    nn::SGD<T> sgd_;
    autodiff::Tape<T> tape_;
    double loss_ = 0;
};

}  // namespace

TAPEGRAD_BENCH_STEP(tapegrad, TapegradStep);
