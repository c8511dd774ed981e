// Time per data-parallel training step and the share of it spent on communication, for the
// Fashion-MNIST MLP (784-256-128-10) or the CNN of bench/README.md (conv 3x3 -> 32, relu,
// pool 2, conv 3x3 -> 64, relu, pool 2, linear -> 10), float, global batch 128, run as
//   mpirun -np N build-bench/bench/distributed_bench [--model mlp|cnn] [--overlap 0|1] [--bucket-kb K] ...
// --overlap 1: buckets start their MPI_Iallreduce from the tape's gradient-ready hook while
// the sweep goes on; --overlap 0: one blocking reduction of every bucket after the sweep.
// Synthetic inputs of the real shapes (timing does not depend on the pixel values).
// Rank 0 prints one line: fastest, median and mean step time, and per step the time in finish()
// (starting what is left, waiting, copying back) and the part of it spent waiting.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/activation_layer.hpp"
#include "nn/convolution.hpp"
#include "nn/distributed/data_parallel.hpp"
#include "nn/distributed/shard.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/sequential.hpp"
#include "nn/numpy_random.hpp"
#include "nn/optimizers.hpp"

namespace {

std::unique_ptr<nn::Module<float>> make_model(const std::string& name) {
    if (name == "mlp") return std::make_unique<nn::MLP<float>>(std::vector<std::size_t>{784, 256, 128, 10},
                                                               nn::Activation::relu, nn::Init::he, 0);
    auto cnn = std::make_unique<nn::Sequential<float>>();
    auto& conv1 = cnn->add<nn::Conv2d<float>>(autodiff::ImageShape{1, 28, 28}, 32, 3, 0, 1);
    cnn->add<nn::ReLU<float>>();
    auto& pool1 = cnn->add<nn::MaxPool2d<float>>(conv1.output_shape(), 2);
    auto& conv2 = cnn->add<nn::Conv2d<float>>(pool1.output_shape(), 64, 3, 0, 2);
    cnn->add<nn::ReLU<float>>();
    auto& pool2 = cnn->add<nn::MaxPool2d<float>>(conv2.output_shape(), 2);
    cnn->add<nn::Linear<float>>(pool2.output_shape().size(), 10, 3);
    return cnn;
}

}  // namespace

int main(int argc, char** argv) {
    nn::distributed::Communicator comm(argc, argv);
    std::size_t steps = 300, warmup = 30, batch = 128, bucket_kb = 1024;
    int overlap = 1, threads = 1;
    std::string model_name = "mlp";
    CLI::App app{"data-parallel step time"};
    app.add_option("--steps", steps)->capture_default_str();
    app.add_option("--warmup", warmup)->capture_default_str();
    app.add_option("--batch", batch, "global batch")->capture_default_str();
    app.add_option("--bucket-kb", bucket_kb)->capture_default_str();
    app.add_option("--overlap", overlap)->capture_default_str();
    app.add_option("--threads", threads, "BLAS threads per rank")->capture_default_str();
    app.add_option("--model", model_name, "mlp or cnn")->check(CLI::IsMember({"mlp", "cnn"}))->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    autodiff::set_blas_threads(threads);

    const std::unique_ptr<nn::Module<float>> model = make_model(model_name);
    nn::Module<float>& net = *model;
    nn::Adam<float> opt(net.parameters(), 1e-3f);
    nn::distributed::DataParallel<float> ddp(comm, net.parameters(), bucket_kb * 1024);
    ddp.set_overlap(overlap != 0);
    autodiff::Tape<float> tape;
    ddp.attach(tape);

    const nn::distributed::Share share = nn::distributed::share_of(batch, comm.rank(), comm.size());
    nn::NumpyRandom rng(1 + std::uint32_t(comm.rank()));
    autodiff::Matrix<float> X = xt::zeros<float>({std::size_t(784), share.count});
    for (std::size_t k = 0; k < X.size(); ++k) X.data()[k] = float(rng.uniform());
    autodiff::Labels y(share.count);
    for (std::size_t j = 0; j < y.size(); ++j) y[j] = j % 10;

    std::vector<double> step_ms;
    comm.barrier();
    for (std::size_t s = 0; s < warmup + steps; ++s) {
        if (s == warmup) {
            ddp.reset_stats();
            comm.barrier();
        }
        const auto start = std::chrono::steady_clock::now();
        ddp.begin_step(share.count, batch);
        tape.reset();
        tape.backward(autodiff::softmax_cross_entropy(net(tape.constant_ref(X)), y));
        ddp.finish();
        opt.step();
        opt.zero_grad();
        if (s >= warmup)
            step_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::vector<double> sorted = step_ms;
    std::sort(sorted.begin(), sorted.end());
    double mean = 0;
    for (double t : step_ms) mean += t / double(step_ms.size());
    const double finish_ms = 1e3 * ddp.stats().finish_seconds / double(steps);
    const double wait_ms = 1e3 * ddp.stats().wait_seconds / double(steps);
    if (comm.is_root())
        std::printf("%s N=%d batch=%zu/rank=%zu overlap=%d buckets=%zu (%zu KiB): step min %.3f, median %.3f, mean %.3f ms; "
                    "finish %.3f ms/step (%.1f%% of mean), of which waiting %.3f ms (%.1f%%)\n",
                    model_name.c_str(), comm.size(), batch, share.count, overlap, ddp.bucket_count(), bucket_kb, sorted.front(), sorted[sorted.size() / 2],
                    mean, finish_ms, 100 * finish_ms / mean, wait_ms, 100 * wait_ms / mean);
    return 0;
}
