// N ranks with a global batch B train to the same parameters as one process with batch B.
// Run alone (N = 1) by ctest's discovery, and under mpirun with N = 2, 3, 4 ("[mpi]").
//
// Tolerance: the only difference is the order of floating-point sums (each rank sums its
// share of the batch, MPI then sums the ranks; weighting by share makes the maths equal).
// In double that is a relative 1e-16 per gradient entry; 3 epochs of Adam (36 steps) carry
// it to about 1e-15 (measured 2e-16 .. 2e-15, printed below), so 1e-12 on parameters of size
// ~1 leaves three orders of margin and would still catch a wrong weight or a lost bucket
// (those differ by 1e-3 or more after one step).

#include <catch2/catch.hpp>

#include <cstdio>

#include "nn/data/csv.hpp"
#include "nn/distributed/communicator.hpp"
#include "sharded_training.hpp"
#include "world.hpp"

using nn::distributed::DataParallel;

namespace {

nn::MLP<double> iris_mlp() { return nn::MLP<double>({4, 16, 8, 3}, nn::Activation::relu, nn::Init::he, 7); }

double max_difference(nn::MLP<double>& a, nn::MLP<double>& b) {
    double worst = 0;
    auto pa = a.parameters(), pb = b.parameters();
    for (std::size_t k = 0; k < pa.size(); ++k)
        worst = std::max(worst, double(xt::amax(xt::abs(pa[k]->value - pb[k]->value))()));
    return worst;
}

// Every rank must hold exactly rank 0's parameters: ranks that drift apart by one rounding
// would slowly train different models.
bool same_as_rank_zero(nn::distributed::Communicator& comm, nn::MLP<double>& net) {
    double differs = 0;
    for (auto* p : net.parameters()) {
        autodiff::Matrix<double> root = p->value;
        comm.broadcast(root.data(), root.size(), 0);
        differs += (root != p->value) ? 1 : 0;
    }
    comm.allreduce_sum(&differs, 1);
    return differs == 0;
}

struct Case {
    std::size_t batch, epochs, bucket_bytes;
    bool overlap;
};

}  // namespace

TEST_CASE("N ranks with global batch B end where one process with batch B ends", "[mpi][distributed]") {
    nn::distributed::Communicator& comm = test_support::world();
    const nn::DataLoader<double> iris(nn::iris<double>());
    // 13 divides by no N in 2..4 (shares of 3 to 7, a last batch of 7); 3 < 4 leaves a rank
    // without examples; 256-byte buckets split the MLP into 5, the default keeps it in one.
    const Case cases[] = {{13, 3, 256, true}, {13, 3, nn::distributed::default_bucket_bytes, true},
                          {13, 2, 256, false}, {3, 1, 256, true}};
    for (const Case& c : cases) {
        nn::MLP<double> alone = iris_mlp();
        nn::Adam<double> alone_opt(alone.parameters(), 1e-2);
        test_support::train_sharded(alone, alone_opt, iris, c.batch, 3, c.epochs, nullptr, [](auto) {});

        nn::MLP<double> net = iris_mlp();
        nn::Adam<double> opt(net.parameters(), 1e-2);
        DataParallel<double> ddp(comm, net.parameters(), c.bucket_bytes);
        ddp.set_overlap(c.overlap);
        test_support::train_sharded(net, opt, iris, c.batch, 3, c.epochs, &ddp, [](auto) {});

        const double difference = max_difference(alone, net);
        if (comm.is_root())
            std::printf("N=%d B=%zu epochs=%zu buckets=%zu overlap=%d: max |N ranks - 1 process| = %.3g\n",
                        comm.size(), c.batch, c.epochs, ddp.bucket_count(), int(c.overlap), difference);
        INFO("N = " << comm.size() << ", B = " << c.batch << ", buckets " << ddp.bucket_count());
        CHECK(difference < 1e-12);
        CHECK(same_as_rank_zero(comm, net));
    }
}

TEST_CASE("the initial parameters are rank 0's on every rank", "[mpi][distributed]") {
    nn::distributed::Communicator& comm = test_support::world();
    // Each rank draws another network; DataParallel's construction broadcasts rank 0's.
    nn::MLP<double> net({4, 5, 3}, nn::Activation::relu, nn::Init::he, 100 + std::uint32_t(comm.rank()));
    nn::MLP<double> rank0({4, 5, 3}, nn::Activation::relu, nn::Init::he, 100);
    DataParallel<double> ddp(comm, net.parameters());
    CHECK(max_difference(net, rank0) == 0);
}

// The broadcast writes rank 0's values into the other ranks' parameters in place: a loss
// recorded before it read the ranks' own values, and its backward() paired them with rank 0's
// weights without a word (found by an attack), where nn::load and an optimizer's step make
// such a recording refuse. Alone, nothing is copied and the recording stands.
TEST_CASE("broadcast_parameters refuses backward() through a recording made before it, on every rank",
          "[mpi][distributed]") {
    nn::distributed::Communicator& comm = test_support::world();
    nn::MLP<double> net({4, 5, 3}, nn::Activation::tanh, nn::Init::he, 100 + std::uint32_t(comm.rank()));
    autodiff::Tape<double> tape;
    const autodiff::Matrix<double> X = nn::NumpyRandom(1).randn(4, 6);
    const auto loss = autodiff::softmax_cross_entropy(net(tape, X), autodiff::Labels{0, 1, 2, 0, 1, 2});
    DataParallel<double> ddp(comm, net.parameters());  // broadcasts rank 0's values
    if (comm.distributed())
        REQUIRE_THROWS_WITH(tape.backward(loss), Catch::Matchers::Contains("was modified in place after it was recorded"));
    else
        REQUIRE_NOTHROW(tape.backward(loss));
}
