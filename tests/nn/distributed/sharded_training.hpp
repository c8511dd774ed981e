#pragma once
// A data-parallel training loop written against the library API alone, as a user writes
// one: the seeded per-epoch permutation, global batches of B, this rank's share of each,
// DataParallel to average. With ddp == nullptr it is the plain one-process loop over the
// same global batches: the reference the N-rank runs must equal.

#include <cstdint>
#include <numeric>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/distributed/data_parallel.hpp"
#include "nn/distributed/shard.hpp"
#include "nn/mlp.hpp"
#include "nn/numpy_random.hpp"
#include "nn/optimizers.hpp"

namespace test_support {

template <class X>
struct NotDeduced {  // lets a caller pass nullptr where T is deduced from the other arguments
    using type = X;
};

struct StepPlace {
    std::size_t epoch, step;
};

template <class T, class Model, class OnStep>
void train_sharded(Model& net, nn::Optimizer<T>& opt, const nn::DataLoader<T>& data, std::size_t batch,
                   std::uint32_t seed, std::size_t epochs,
                   typename NotDeduced<nn::distributed::DataParallel<T>>::type* ddp, OnStep&& on_step) {
    const int rank = ddp ? ddp->communicator().rank() : 0;
    const int ranks = ddp ? ddp->communicator().size() : 1;
    autodiff::Tape<T> tape;
    if (ddp) ddp->attach(tape);
    autodiff::Matrix<T> X;
    autodiff::Labels y;
    std::vector<std::size_t> order(data.size());
    for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        std::iota(order.begin(), order.end(), std::size_t(0));
        nn::NumpyRandom(static_cast<std::uint32_t>(seed + epoch)).shuffle(order);  // as nn::Trainer
        for (std::size_t first = 0, step = 0; first < order.size(); first += batch, ++step) {
            const std::size_t global = std::min(batch, order.size() - first);
            const nn::distributed::Share share = nn::distributed::share_of(global, rank, ranks);
            on_step(StepPlace{epoch, step});
            if (ddp) ddp->begin_step(share.count, global);
            if (share.count > 0) {  // a rank may get no example of a batch smaller than N
                data.gather(order.data() + first + share.begin, share.count, X, y);
                tape.reset();
                tape.backward(autodiff::softmax_cross_entropy(net(tape, X), y));
            }
            if (ddp) ddp->finish();
            opt.step();
            opt.zero_grad();
        }
    }
    if (ddp) ddp->detach(tape);
}

}  // namespace test_support
