// DataParallel as one process sees it: weights, buckets, and misuse reported clearly.

#include <catch2/catch.hpp>

#include <memory>

#include "nn/distributed/data_parallel.hpp"
#include "world.hpp"

using namespace autodiff;
using nn::distributed::DataParallel;
using Catch::Matchers::Contains;

namespace {
Matrix<double> ones(std::size_t rows, std::size_t cols) { return xt::ones<double>({rows, cols}); }
}  // namespace

TEST_CASE("DataParallel packs parameters last-first into buckets of the given size", "[distributed]") {
    Parameter<double> W1(ones(4, 4), "W1"), b1(ones(4, 1), "b1"), W2(ones(2, 4), "W2"), b2(ones(2, 1), "b2");
    // 16, 4, 8 and 2 doubles: with 100 bytes b2 + W2 (80 bytes) share a bucket, b1 (32) starts
    // another as 112 > 100, and W1 (128) alone exceeds the size and gets its own.
    DataParallel<double> ddp(test_support::world(), {&W1, &b1, &W2, &b2}, 100);
    REQUIRE(ddp.bucket_count() == 3);
    DataParallel<double> one(test_support::world(), {&W1, &b1, &W2, &b2});
    REQUIRE(one.bucket_count() == 1);
}

TEST_CASE("DataParallel weights a rank's gradient by its share of the global batch", "[distributed]") {
    if (test_support::world().size() != 1) return;  // the sums below are one rank's
    Parameter<double> W(ones(2, 2), "W");
    DataParallel<double> ddp(test_support::world(), {&W});
    W.grad = ones(2, 2) * 6.0;
    ddp.begin_step(1, 3);
    ddp.finish();
    REQUIRE((W.grad == ones(2, 2) * 2.0));
    W.grad = ones(2, 2) * 6.0;
    ddp.begin_step(3, 3);
    ddp.finish();
    REQUIRE((W.grad == ones(2, 2) * 6.0));  // the whole batch: untouched
}

TEST_CASE("DataParallel reports misuse by name", "[distributed][errors]") {
    Parameter<double> W(ones(2, 2), "W"), b(ones(2, 1), "b");
    REQUIRE_THROWS_WITH(DataParallel<double>(test_support::world(), {&W, &W}), Contains("'W' is listed twice"));
    REQUIRE_THROWS_WITH(DataParallel<double>(test_support::world(), {}), Contains("no parameters"));
    REQUIRE_THROWS_WITH(DataParallel<double>(test_support::world(), {&W}, 0), Contains("bucket size"));
    DataParallel<double> ddp(test_support::world(), {&W, &b});
    REQUIRE_THROWS_WITH(ddp.finish(), Contains("no begin_step()"));
    REQUIRE_THROWS_WITH(ddp.begin_step(4, 3), Contains("4 of 3 examples"));
    REQUIRE_THROWS_WITH(ddp.begin_step(0, 0), Contains("0 of 0 examples"));
    ddp.begin_step(1, 2);
    REQUIRE_THROWS_WITH(ddp.begin_step(1, 2), Contains("previous step was not finish()ed"));
    ddp.finish();
}

TEST_CASE("DataParallel refuses a parameter destroyed after it was made, naming it", "[distributed][errors]") {
    // finish() scaled the destroyed parameter's gradient in freed memory (heap-use-after-free).
    auto W = std::make_unique<Parameter<double>>(ones(2, 2), "W");
    Parameter<double> b(ones(2, 1), "b");
    DataParallel<double> ddp(test_support::world(), {W.get(), &b});
    W.reset();
    REQUIRE_THROWS_WITH(ddp.begin_step(1, 3), Contains("DataParallel::begin_step: parameter 'W' was destroyed"));
    REQUIRE_THROWS_WITH(ddp.broadcast_parameters(), Contains("DataParallel::broadcast_parameters: parameter 'W'"));
}

TEST_CASE("one rank of one without a launcher", "[distributed]") {
    if (nn::distributed::Communicator::launched_by_mpi()) return;
    auto& comm = test_support::world();
    REQUIRE(comm.rank() == 0);
    REQUIRE(comm.size() == 1);
    REQUIRE_FALSE(comm.distributed());
    double x = 3;
    comm.allreduce_sum(&x, 1);
    REQUIRE(x == 3);
    REQUIRE_THROWS_WITH(comm.set_timeout_seconds(0), Contains("positive number of seconds"));
}
