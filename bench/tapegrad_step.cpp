// tapegrad's engine through nn: the step a user writes. `tapegrad`: recorded once, then
// replayed (autodiff::Replay, as nn's Trainer does); `variant_record`: recorded afresh every
// step (reset, record, backward), the plain loop.

#include <memory>

#include "harness.hpp"

#include "autodiff/autodiff.hpp"
#include "engine_matrix.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"

namespace {

using bench::matrix;

template <class T, bool Replayed>
class TapegradStepT {
public:
    explicit TapegradStepT(const bench::Problem<T>& p)
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
        if (Replayed && replay_) {
            loss_ = double(replay_->run());
        } else {
            tape_.reset();
            autodiff::Var<T> loss = autodiff::softmax_cross_entropy(net_(tape_.constant_ref(X_)), Y_);
            tape_.backward(loss);
            loss_ = double(loss.value()(0, 0));
            if (Replayed) replay_ = std::make_unique<autodiff::Replay<T>>(tape_, loss);
        }
        sgd_.step();
        sgd_.zero_grad();
    }

    double loss() const { return loss_; }

private:
    nn::MLP<T> net_;
    autodiff::Matrix<T> X_, Y_;
    nn::SGD<T> sgd_;
    autodiff::Tape<T> tape_;
    std::unique_ptr<autodiff::Replay<T>> replay_;
    double loss_ = 0;
};

template <class T>
using TapegradStep = TapegradStepT<T, true>;
template <class T>
using RecordingStep = TapegradStepT<T, false>;

}  // namespace

TAPEGRAD_BENCH_STEP(tapegrad, TapegradStep);
TAPEGRAD_BENCH_STEP(variant_record, RecordingStep);
