// bench/libtorch_step.cpp: the same training step in LibTorch (C++), as a user of it would
// write it: addmm for Z = W·A + b (b is n_out x 1, broadcast over the examples), relu,
// cross_entropy on the logits (fused log-softmax + NLL, mean over the m examples; the
// logits are n_out x m, so it gets their transpose view), autograd backward, then SGD
// under NoGradGuard and the gradients zeroed. Layout as in the notebook.
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "harness.hpp"

namespace {

template <class T>
torch::Dtype torch_dtype() {
    return std::is_same<T, double>::value ? torch::kFloat64 : torch::kFloat32;
}

template <class T>
torch::Tensor from_rows(const std::vector<T>& v, std::int64_t rows, std::int64_t cols) {
    return torch::from_blob(const_cast<T*>(v.data()), {rows, cols}, torch_dtype<T>()).clone();
}

template <class T>
class LibtorchStep {
public:
    explicit LibtorchStep(const bench::Problem<T>& p) : lr_(double(p.lr)) {
        torch::NoGradGuard no_grad;
        const auto m = std::int64_t(p.m);
        X_ = from_rows(p.X, std::int64_t(p.sizes.front()), m);
        // class index of each example (column of the one-hot Y)
        const torch::Tensor Y = from_rows(p.Y, std::int64_t(p.sizes.back()), m);
        labels_ = Y.argmax(0);
        for (std::size_t l = 0; l < p.layers(); ++l) {
            const auto n_in = std::int64_t(p.sizes[l]), n_out = std::int64_t(p.sizes[l + 1]);
            W_.push_back(from_rows(p.W[l], n_out, n_in).requires_grad_(true));
            b_.push_back(from_rows(p.b[l], n_out, 1).requires_grad_(true));
        }
    }

    void step() {
        torch::Tensor A = X_;
        const std::size_t L = W_.size();
        for (std::size_t l = 0; l < L; ++l) {
            torch::Tensor Z = torch::addmm(b_[l], W_[l], A);
            A = l + 1 < L ? torch::relu(Z) : Z;
        }
        torch::Tensor loss = torch::nn::functional::cross_entropy(A.t(), labels_);
        loss.backward();
        {
            torch::NoGradGuard no_grad;
            for (std::size_t l = 0; l < L; ++l) {
                W_[l].add_(W_[l].grad(), -lr_);
                b_[l].add_(b_[l].grad(), -lr_);
                W_[l].mutable_grad().zero_();
                b_[l].mutable_grad().zero_();
            }
        }
        loss_ = loss.item<double>();
    }

    double loss() const { return loss_; }

private:
    double lr_;
    torch::Tensor X_, labels_;
    std::vector<torch::Tensor> W_, b_;
    double loss_ = 0.0;
};

void torch_threads(int n) {
    torch::set_num_threads(n);
}

// With OMP_WAIT_POLICY=passive (libgomp's workers sleep instead of spinning) the results
// are named libtorch_passive: run.sh runs this executable both ways.
bool omp_passive() {
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    return policy && (std::string(policy) == "passive" || std::string(policy) == "PASSIVE");
}

}  // namespace

static const bool libtorch_threads_hooked = bench::add_thread_hook(&torch_threads);
static const bool libtorch_registered =
    omp_passive() ? bench::register_impl<LibtorchStep>("libtorch_passive") : bench::register_impl<LibtorchStep>("libtorch");
