// bench/cnn_libtorch_step.cpp: the CNN workload in LibTorch (C++), as its users write it:
// NCHW tensors, torch::conv2d (oneDNN on this build), relu, max_pool2d, linear on the
// flattened image, cross_entropy, autograd backward, SGD under NoGradGuard, grads zeroed.
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "cnn_harness.hpp"

namespace {

torch::Tensor tensor(const std::vector<float>& v, torch::IntArrayRef shape) {
    return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

template <class T>
class LibtorchCnnStep {
    static_assert(std::is_same<T, float>::value, "the CNN workload is float32");
    using P = bench::CnnProblem<T>;

public:
    explicit LibtorchCnnStep(const bench::CnnProblem<T>& p) : lr_(double(p.lr)) {
        torch::NoGradGuard no_grad;
        const auto m = std::int64_t(p.m), side = std::int64_t(P::image);
        // tapegrad's X is 784 x m (one image per column): its transpose is torch's (m, 1, 28, 28).
        X_ = tensor(p.X, {side * side, m}).t().contiguous().reshape({m, 1, side, side});
        std::vector<std::int64_t> labels(p.labels.begin(), p.labels.end());
        labels_ = torch::tensor(labels, torch::kInt64);
        params_ = {tensor(p.W1, {32, 1, 3, 3}), tensor(p.b1, {32}),  tensor(p.W2, {64, 32, 3, 3}),
                   tensor(p.b2, {64}),          tensor(p.W3, {10, 3136}), tensor(p.b3, {10})};
        for (auto& t : params_) t.requires_grad_(true);
    }

    void step() {
        auto h = torch::max_pool2d(torch::relu(torch::conv2d(X_, params_[0], params_[1], 1, 1)), 2);
        h = torch::max_pool2d(torch::relu(torch::conv2d(h, params_[2], params_[3], 1, 1)), 2);
        torch::Tensor loss = torch::nn::functional::cross_entropy(torch::linear(h.flatten(1), params_[4], params_[5]), labels_);
        loss.backward();
        {
            torch::NoGradGuard no_grad;
            for (auto& t : params_) {
                t.add_(t.grad(), -lr_);
                t.mutable_grad().zero_();
            }
        }
        loss_ = loss.item<double>();
    }

    double loss() const { return loss_; }

private:
    double lr_;
    torch::Tensor X_, labels_;
    std::vector<torch::Tensor> params_;
    double loss_ = 0.0;
};

bool omp_passive() {  // as in libtorch_step.cpp: run.sh runs this binary both ways
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    return policy && (std::string(policy) == "passive" || std::string(policy) == "PASSIVE");
}

}  // namespace

static const bool libtorch_cnn_registered = omp_passive()
                                                ? bench::register_cnn_impl<LibtorchCnnStep>("libtorch_passive")
                                                : bench::register_cnn_impl<LibtorchCnnStep>("libtorch");
