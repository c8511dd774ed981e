// bench/cnn_tapegrad_step.cpp: the CNN workload on tapegrad's engine, as a user writes it
// with the ops (conv2d, relu, max_pool2d, linear, softmax_cross_entropy), then SGD.

#include "cnn_harness.hpp"

#include "autodiff/autodiff.hpp"
#include "engine_matrix.hpp"
#include "nn/optimizers.hpp"

namespace {

using bench::matrix;

template <class T>
class TapegradCnnStep {
    using P = bench::CnnProblem<T>;

public:
    explicit TapegradCnnStep(const bench::CnnProblem<T>& p)
        : W1_(matrix(p.W1, P::channels1, 9), "W1"), b1_(matrix(p.b1, P::channels1, 1), "b1"),
          W2_(matrix(p.W2, P::channels2, P::channels1 * 9), "W2"), b2_(matrix(p.b2, P::channels2, 1), "b2"),
          W3_(matrix(p.W3, P::classes, P::features3), "W3"), b3_(matrix(p.b3, P::classes, 1), "b3"),
          X_(matrix(p.X, P::image * P::image, p.m)), labels_(p.labels),
          sgd_({&W1_, &b1_, &W2_, &b2_, &W3_, &b3_}, p.lr) {}

    void step() {
        using namespace autodiff;
        tape_.reset();
        const Window conv{3, 3, 1, 1};
        Var<T> h = relu(conv2d(tape_.constant(X_), {1, 28, 28}, tape_.parameter(W1_), tape_.parameter(b1_), conv));
        h = max_pool2d(h, {32, 28, 28}, 2);
        h = relu(conv2d(h, {32, 14, 14}, tape_.parameter(W2_), tape_.parameter(b2_), conv));
        h = max_pool2d(h, {64, 14, 14}, 2);
        Var<T> loss = softmax_cross_entropy(linear(tape_.parameter(W3_), h, tape_.parameter(b3_)), labels_);
        tape_.backward(loss);
        loss_ = double(loss.value()(0, 0));
        sgd_.step();
        sgd_.zero_grad();
    }

    double loss() const { return loss_; }

private:
    autodiff::Parameter<T> W1_, b1_, W2_, b2_, W3_, b3_;
    autodiff::Matrix<T> X_;
    autodiff::Labels labels_;
    nn::SGD<T> sgd_;
    autodiff::Tape<T> tape_;
    double loss_ = 0;
};

}  // namespace

TAPEGRAD_BENCH_CNN_STEP(tapegrad, TapegradCnnStep);
