// Ranks that list different parameters (order, shapes, an extra one) are told so by
// DataParallel's constructor on every rank, at once, instead of training different models,
// failing inside MPI with MPI_ERR_TRUNCATE, or hanging until the timeout.

#include <catch2/catch.hpp>

#include <chrono>

#include "nn/distributed/data_parallel.hpp"
#include "world.hpp"

using namespace autodiff;
using nn::distributed::DataParallel;
using Catch::Matchers::Contains;

namespace {

Matrix<double> ones(std::size_t rows, std::size_t cols) { return xt::ones<double>({rows, cols}); }

// Builds DataParallel over `parameters` (rank 1's may differ); every rank must throw the
// clear error well within the timeout. Returns this rank's message.
std::string refused(std::vector<Parameter<double>*> parameters) {
    const auto start = std::chrono::steady_clock::now();
    std::string message;
    try {
        DataParallel<double> ddp(test_support::world(), parameters);
    } catch (const Error& e) {
        message = e.what();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(seconds < 10);
    CHECK_THAT(message, Contains("the parameters differ between ranks") && Contains("build the same model on every rank"));
    return message;
}

}  // namespace

TEST_CASE("ranks whose parameters differ are told so on every rank, naming the difference", "[mpi][distributed]") {
    auto& comm = test_support::world();
    if (!comm.distributed()) return;  // one rank cannot differ from itself
    const bool odd_one = comm.rank() == 1;
    Parameter<double> a(ones(3, 4), "a"), b(ones(4, 3), "b"), c(ones(2, 2), "c"), wide(ones(3, 5), "a");

    SECTION("the same parameters in another order") {
        const std::string message = refused(odd_one ? std::vector<Parameter<double>*>{&b, &a}
                                                    : std::vector<Parameter<double>*>{&a, &b});
        if (odd_one)
            CHECK_THAT(message, Contains("has 2 ('b' 4x3, 'a' 3x4)") &&
                                    Contains("parameter #1: here 'b' 4x3, on rank 0 one 3x4 of another name"));
        else if (comm.rank() != 0)
            CHECK_THAT(message, Contains("agree with rank 0's, another rank's differ"));
    }
    SECTION("a parameter of another shape") {
        const std::string message = refused(odd_one ? std::vector<Parameter<double>*>{&wide, &b}
                                                    : std::vector<Parameter<double>*>{&a, &b});
        if (odd_one) CHECK_THAT(message, Contains("parameter #1: here 'a' 3x5, on rank 0 one 3x4 of the same name"));
    }
    SECTION("an extra parameter on one rank") {
        const std::string message = refused(odd_one ? std::vector<Parameter<double>*>{&a, &b, &c}
                                                    : std::vector<Parameter<double>*>{&a, &b});
        if (odd_one) CHECK_THAT(message, Contains("rank 0 has only 2, so this rank's parameter #3 'c' 2x2 is extra"));
    }
    SECTION("a parameter missing on one rank") {
        const std::string message = refused(odd_one ? std::vector<Parameter<double>*>{&a}
                                                    : std::vector<Parameter<double>*>{&a, &b});
        if (odd_one) CHECK_THAT(message, Contains("rank 0 has 2, and its parameter #2 (4x3) is missing here"));
    }
    // The same names and shapes in float on one rank: the table matched, and rank 0's doubles
    // were broadcast into that rank's floats (half of them, as garbage) and the gradients
    // summed across types, without a word (found by an attack).
    SECTION("the same parameters in float on one rank") {
        if (odd_one) {
            Parameter<float> fa(xt::ones<float>({3, 4}), "a"), fb(xt::ones<float>({4, 3}), "b");
            const auto start = std::chrono::steady_clock::now();
            std::string message;
            try {
                DataParallel<float> ddp(comm, {&fa, &fb});
            } catch (const Error& e) {
                message = e.what();
            }
            CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 10);
            CHECK_THAT(message, Contains("the parameters differ between ranks") &&
                                    Contains("rank 0's are double (8 bytes each), this rank's float (4 bytes)"));
        } else {
            refused({&a, &b});
        }
    }
    // The same parameters packed into other buckets (bucket_bytes differs on one rank): the
    // ranks' allreduces then paired a 24-number bucket with a 12-number one, MPI_ERR_TRUNCATE
    // or sums of unrelated gradients (found by an attack).
    SECTION("the same parameters in buckets of another size on one rank") {
        const auto start = std::chrono::steady_clock::now();
        std::string message;
        try {
            DataParallel<double> ddp(comm, {&a, &b}, odd_one ? 8 : nn::distributed::default_bucket_bytes);
        } catch (const Error& e) {
            message = e.what();
        }
        CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 10);
        CHECK_THAT(message, Contains("the parameters differ between ranks"));
        if (odd_one)
            CHECK_THAT(message, Contains("rank 0 packs them into 1 bucket for its reductions, this rank into 2 "
                                         "(bucket_bytes 8): give every rank the same bucket_bytes"));
    }
    // Afterwards the ranks are still in step: the same parameters go through.
    DataParallel<double> ddp(comm, {&a, &b});
    CHECK(ddp.bucket_count() >= 1);
}

// broadcast_parameters (after loading a checkpoint on rank 0 only, say) sent each parameter
// as it was now: one rank had resized one since the DataParallel was made, and its peers
// took 8 numbers into a 12-number array, the rest left as it was, without a word (or
// MPI_ERR_TRUNCATE the other way round). Now every rank refuses before anything is sent
// (found by an attack).
TEST_CASE("broadcast_parameters refuses a parameter resized since on any rank, on every rank", "[mpi][distributed]") {
    auto& comm = test_support::world();
    Parameter<double> a(ones(3, 4), "a"), b(ones(4, 3), "b");
    DataParallel<double> ddp(comm, {&a, &b});
    SECTION("resized on rank 0 only") {
        if (comm.is_root()) a.value = ones(2, 4);
        std::string message;
        const auto start = std::chrono::steady_clock::now();
        try {
            ddp.broadcast_parameters();
        } catch (const Error& e) {
            message = e.what();
        }
        CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 10);
        CHECK_THAT(message, Contains("DataParallel::broadcast_parameters: a parameter changed shape since the DataParallel was made"));
        if (comm.is_root())
            CHECK_THAT(message, Contains("here 'a' is 2x4, not the 3x4 it was"));
        else
            CHECK_THAT(message, Contains("on another rank"));
        a.value = ones(3, 4);
    }
    SECTION("transposed in place on every rank") {
        a.value = ones(4, 3);
        std::string message;
        try {
            ddp.broadcast_parameters();
        } catch (const Error& e) {
            message = e.what();
        }
        CHECK_THAT(message, Contains("here 'a' is 4x3, not the 3x4 it was"));
        a.value = ones(3, 4);
    }
    // As it was, it goes through.
    ddp.broadcast_parameters();
    CHECK(a.value.shape()[0] == 3);
}
