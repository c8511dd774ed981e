// A model with batch norm and dropout, data-parallel. Batch-norm statistics are per rank, as
// in PyTorch's DistributedDataParallel (no synchronisation), and each rank draws its dropout
// masks from a stream of its own, keyed on (seed, step, rank). N ranks therefore do NOT
// equal one process over the whole batch (the normalisation uses each share's mean and
// variance); they equal exactly one process that accumulates the N shares' gradients, each
// normalised over its own share, weighted by its size, with the same masks: what this test
// checks, to the MLP's tolerance (sums in another order only). The difference to the
// whole-batch run is printed, not asserted: it is the price of per-rank statistics.

#include <catch2/catch.hpp>

#include <cstdio>
#include <numeric>

#include "autodiff/autodiff.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/distributed/data_parallel.hpp"
#include "nn/distributed/shard.hpp"
#include "nn/numpy_random.hpp"
#include "nn/optimizers.hpp"
#include "world.hpp"

using namespace autodiff;

namespace {

// W1 x -> batch norm (gain, bias) -> relu -> dropout(0.2) -> linear, on Iris. No bias before
// the batch norm (as PyTorch models do): it would cancel out, its gradient would be pure
// rounding noise, and Adam, dividing by sqrt(v) + eps, would turn that noise into 1e-8 steps
// that differ with the order of sums (measured) while changing no output.
struct NormDropNet {
    Parameter<double> W1, gain, bias, W2, b2;
    CounterRng rng;
    NormDropNet()
        : W1(nn::NumpyRandom(5).randn(16, 4) * 0.5, "W1"),
          gain(xt::ones<double>({16, 1}), "gain"), bias(xt::zeros<double>({16, 1}), "bias"),
          W2(nn::NumpyRandom(6).randn(3, 16) * 0.3, "W2"), b2(xt::zeros<double>({3, 1}), "b2") {}
    std::vector<Parameter<double>*> parameters() { return {&W1, &gain, &bias, &W2, &b2}; }
    Var<double> operator()(Tape<double>& tape, const Matrix<double>& X) {
        Var<double> w1 = tape.parameter(W1);
        Var<double> g = tape.parameter(gain), bb = tape.parameter(bias);
        Var<double> h = dropout(relu(batch_norm(matmul(w1, tape.constant(X)), g, bb)), 0.2, rng);
        Var<double> w2 = tape.parameter(W2), c2 = tape.parameter(b2);
        return linear(w2, h, c2);
    }
};

double max_difference(NormDropNet& a, NormDropNet& b) {
    double worst = 0;
    auto pa = a.parameters(), pb = b.parameters();
    for (std::size_t k = 0; k < pa.size(); ++k)
        worst = std::max(worst, double(xt::amax(xt::abs(pa[k]->value - pb[k]->value))()));
    return worst;
}

// Full global batches of B only (batch norm needs 2 examples per share). `played`: the
// shares this process computes: {rank} with ddp, or all N in turn (accumulating, weighted).
void train(NormDropNet& net, const nn::DataLoader<double>& data, std::size_t B, std::size_t epochs, int ranks,
           const std::vector<int>& played, nn::distributed::DataParallel<double>* ddp) {
    nn::Adam<double> opt(net.parameters(), 1e-2);
    Tape<double> tape;
    if (ddp) ddp->attach(tape);
    Matrix<double> X;
    Labels y;
    std::vector<std::size_t> order(data.size());
    std::uint64_t step = 0;
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        std::iota(order.begin(), order.end(), std::size_t(0));
        nn::NumpyRandom(static_cast<std::uint32_t>(11 + epoch)).shuffle(order);
        for (std::size_t first = 0; first + B <= order.size(); first += B, ++step) {
            for (int rank : played) {
                const auto share = nn::distributed::share_of(B, rank, ranks);
                if (ddp) ddp->begin_step(share.count, B);
                data.gather(order.data() + first + share.begin, share.count, X, y);
                net.rng = CounterRng(1000 * step + std::uint64_t(rank));  // this rank's masks for this step
                tape.reset();
                Var<double> loss = softmax_cross_entropy(net(tape, X), y);
                // Alone, playing every rank: weight each share as DataParallel does.
                tape.backward(ddp ? loss : (double(share.count) / double(B)) * loss);
                if (ddp) ddp->finish();
            }
            opt.step();
            opt.zero_grad();
        }
    }
    if (ddp) ddp->detach(tape);
}

}  // namespace

TEST_CASE("with batch norm and dropout, N ranks equal one process accumulating the N shares", "[mpi][distributed]") {
    nn::distributed::Communicator& comm = test_support::world();
    const int N = comm.size();
    const nn::DataLoader<double> iris(nn::iris<double>());
    const std::size_t B = 22, epochs = 3;  // shares of 5 to 11 for N = 2..4

    NormDropNet distributed;
    nn::distributed::DataParallel<double> ddp(comm, distributed.parameters(), 256);
    train(distributed, iris, B, epochs, N, {comm.rank()}, &ddp);

    std::vector<int> every_rank(static_cast<std::size_t>(N));
    std::iota(every_rank.begin(), every_rank.end(), 0);
    NormDropNet accumulating;
    train(accumulating, iris, B, epochs, N, every_rank, nullptr);

    NormDropNet whole_batch;  // one share of B: the statistics of the whole batch
    train(whole_batch, iris, B, epochs, 1, {0}, nullptr);

    const double difference = max_difference(distributed, accumulating);
    if (comm.is_root())
        std::printf("batch norm + dropout, N=%d: max |N ranks - 1 process accumulating N shares| = %.3g; "
                    "|N ranks - whole-batch statistics| = %.3g\n",
                    N, difference, max_difference(distributed, whole_batch));
    CHECK(difference < 1e-12);
}
