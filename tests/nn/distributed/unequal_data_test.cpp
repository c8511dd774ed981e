// A data-parallel Trainer needs the same data set on every rank (each rank takes its share
// of every global batch). Ranks holding different numbers of examples are refused on every
// rank before the first batch, instead of dividing the ranks' summed statistics by this
// rank's count (an accuracy of 2.5) or hanging when the batch counts differ.

#include <catch2/catch.hpp>

#include <chrono>

#include <xtensor/xview.hpp>

#include "nn/data/csv.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/data_error.hpp"
#include "nn/distributed/data_parallel.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"
#include "nn/training.hpp"
#include "world.hpp"

using Catch::Matchers::Contains;

namespace {

// Iris with its first `count` examples only.
nn::Dataset<double> first_of_iris(std::size_t count) {
    nn::Dataset<double> data = nn::iris<double>();
    data.features = xt::view(data.features, xt::all(), xt::range(0, count));
    data.labels.resize(count);
    return data;
}

// The message of the DataError that f throws ("" if none).
template <class F>
std::string data_error(F f) {
    try {
        f();
    } catch (const nn::DataError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a data-parallel Trainer refuses ranks that hold different numbers of examples", "[mpi][distributed]") {
    auto& comm = test_support::world();
    if (!comm.distributed()) return;  // one rank always agrees with itself
    // Rank 1 holds 100 examples, the others 150: 7 batches of 16 against 10, so without the
    // check the ranks would not even run the same number of steps.
    const std::size_t mine = comm.rank() == 1 ? 100 : 150;
    const nn::DataLoader<double> data(first_of_iris(mine));
    nn::MLP<double> net({4, 8, 3}, nn::Activation::relu, nn::Init::he, 7);
    nn::Adam<double> optimizer(net.parameters(), 1e-2);
    nn::Trainer<double> trainer(net, optimizer, 16, 5);
    nn::distributed::DataParallel<double> ddp(comm, net.parameters());
    trainer.set_gradient_sync(&ddp);

    const std::string total = std::to_string(100 + 150 * std::size_t(comm.size() - 1));
    const std::string expected = "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) +
                                 " has " + std::to_string(mine) + " examples, the " + std::to_string(comm.size()) +
                                 " ranks " + total + " in all";
    const auto start = std::chrono::steady_clock::now();
    CHECK_THAT(data_error([&] { trainer.train_epoch(data, 0); }), Contains("Trainer::train_epoch") && Contains(expected));
    CHECK_THAT(data_error([&] { trainer.evaluate(data); }), Contains("Trainer::evaluate") && Contains(expected));
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 10);

    // The same data on every rank still trains.
    const nn::DataLoader<double> same(first_of_iris(150));
    const nn::EpochStats stats = trainer.train_epoch(same, 0);
    CHECK(stats.examples == 150);
    CHECK(stats.accuracy <= 1.0);
    CHECK(trainer.evaluate(same).accuracy <= 1.0);
}

// Each rank takes its share of the same global batches, shuffled by (seed, epoch): ranks
// given different batch sizes ran different numbers of steps (collectives paired with the
// wrong ones, then a hang until the timeout), and ranks given different seeds (seed + rank,
// as for dropout) shuffled differently and trained on an arbitrary mix of examples, without
// a word (found by an attack).
TEST_CASE("a data-parallel Trainer refuses ranks that disagree on the batch size, the seed or drop_last",
          "[mpi][distributed]") {
    auto& comm = test_support::world();
    if (!comm.distributed()) return;
    const nn::DataLoader<double> data(first_of_iris(150));
    const bool odd_one = comm.rank() == 1;
    nn::MLP<double> net({4, 8, 3}, nn::Activation::relu, nn::Init::he, 7);
    nn::Adam<double> optimizer(net.parameters(), 1e-2);
    nn::distributed::DataParallel<double> ddp(comm, net.parameters());
    const auto refused = [&](nn::Trainer<double>& trainer, const std::string& mine) {
        trainer.set_gradient_sync(&ddp);
        std::string message;
        const auto start = std::chrono::steady_clock::now();
        try {
            trainer.train_epoch(data, 0);
        } catch (const autodiff::Error& e) {
            message = e.what();
        }
        CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 10);
        CHECK_THAT(message, Contains("Trainer::train_epoch: the ranks train differently") &&
                                Contains("rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) +
                                         " has " + mine) &&
                                Contains("the same batch size, seed and drop_last on every rank"));
    };
    SECTION("the batch size") {
        nn::Trainer<double> trainer(net, optimizer, odd_one ? 32 : 16, 5);
        refused(trainer, odd_one ? "batch size 32, seed 5, drop_last off" : "batch size 16, seed 5, drop_last off");
    }
    SECTION("the seed") {
        nn::Trainer<double> trainer(net, optimizer, 16, 5 + std::uint32_t(comm.rank()));
        refused(trainer, "batch size 16, seed " + std::to_string(5 + comm.rank()) + ", drop_last off");
    }
    SECTION("drop_last") {
        nn::Trainer<double> trainer(net, optimizer, 16, 5);
        trainer.set_drop_last(odd_one);
        refused(trainer, std::string("batch size 16, seed 5, drop_last ") + (odd_one ? "on" : "off"));
    }
    // The same on every rank still trains.
    nn::Trainer<double> trainer(net, optimizer, 16, 5);
    trainer.set_gradient_sync(&ddp);
    CHECK(trainer.train_epoch(data, 0).examples == 150);
}
