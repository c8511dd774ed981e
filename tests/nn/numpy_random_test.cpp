// nn::NumpyRandom against NumPy 1.24's legacy np.random. The .npy streams come from
// tests/data/notebook/generate.py (RNG_STREAM: one RandomState per seed, pieces drawn in order).
#include <catch2/catch.hpp>

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "autodiff/error.hpp"
#include "nn/numpy_random.hpp"

namespace {

template <class T>
xt::xarray<T> fixture(std::uint32_t seed, const std::string& piece) {
    return xt::load_npy<T>(std::string(TAPEGRAD_TEST_DATA) + "/notebook/rng_seed" + std::to_string(seed) +
                           "_" + piece + ".npy");
}

// Exact comparison, element by element, of a C++ draw with the NumPy stream of the same length.
template <class Drawn, class T>
void require_same_stream(const Drawn& drawn, const xt::xarray<T>& expected) {
    REQUIRE(drawn.size() == expected.size());
    auto e = expected.begin();
    std::size_t index = 0;
    for (auto value : drawn) {
        CAPTURE(index);
        REQUIRE(value == *e);
        ++e;
        ++index;
    }
}

}  // namespace

TEST_CASE("NumpyRandom reproduces np.random bit for bit over a mixed stream, seeds 0, 1, 42, 2**32-1",
          "[nn][numpy_random]") {
    for (const std::uint32_t seed : {0u, 1u, 42u, 4294967295u}) {
        CAPTURE(seed);
        nn::NumpyRandom rng(seed);
        require_same_stream(rng.rand(1, 1000), fixture<double>(seed, "rand_1000"));
        require_same_stream(rng.randn(1, 1001), fixture<double>(seed, "randn_1001"));
        // randn(1001) left one normal cached; NumPy's next randn starts with it.
        require_same_stream(rng.randn(1, 3), fixture<double>(seed, "randn_3"));
        require_same_stream(rng.choice(4, 10), fixture<std::int64_t>(seed, "choice_4_10"));
        require_same_stream(rng.choice(1000, 50), fixture<std::int64_t>(seed, "choice_1000_50"));
        require_same_stream(rng.choice(7, 13), fixture<std::int64_t>(seed, "choice_7_13"));
        require_same_stream(rng.choice(1, 5), fixture<std::int64_t>(seed, "choice_1_5"));
        require_same_stream(rng.randint(-5, std::int64_t{1} << 40, 5),
                            fixture<std::int64_t>(seed, "randint_wide_5"));
        require_same_stream(rng.permutation(10), fixture<std::int64_t>(seed, "permutation_10"));
        require_same_stream(rng.permutation(1000), fixture<std::int64_t>(seed, "permutation_1000"));
        // Still in step: every piece above consumed exactly as many words as NumPy did.
        require_same_stream(rng.rand(1, 3), fixture<double>(seed, "rand_tail_3"));
    }
}

TEST_CASE("NumpyRandom's scalar uniform() and standard_normal() follow the same streams as rand and randn",
          "[nn][numpy_random]") {
    nn::NumpyRandom rng(42);
    std::vector<double> uniforms(1000);
    for (double& u : uniforms) u = rng.uniform();
    require_same_stream(uniforms, fixture<double>(42, "rand_1000"));
    std::vector<double> normals(1001);
    for (double& z : normals) z = rng.standard_normal();
    require_same_stream(normals, fixture<double>(42, "randn_1001"));
}

TEST_CASE("NumpyRandom(1).randn gives the notebook's printed W1 and b1 (times 0.01, to 8 printed digits)",
          "[nn][numpy_random]") {
    // Typed in from the notebook's output: print("Intial parameters - ", parameters).
    const double printed_W1[10][5] = {
        {0.01624345, -0.00611756, -0.00528172, -0.01072969, 0.00865408},
        {-0.02301539, 0.01744812, -0.00761207, 0.00319039, -0.0024937},
        {0.01462108, -0.02060141, -0.00322417, -0.00384054, 0.01133769},
        {-0.01099891, -0.00172428, -0.00877858, 0.00042214, 0.00582815},
        {-0.01100619, 0.01144724, 0.00901591, 0.00502494, 0.00900856},
        {-0.00683728, -0.0012289, -0.00935769, -0.00267888, 0.00530355},
        {-0.00691661, -0.00396754, -0.00687173, -0.00845206, -0.00671246},
        {-0.00012665, -0.0111731, 0.00234416, 0.01659802, 0.00742044},
        {-0.00191836, -0.00887629, -0.00747158, 0.01692455, 0.00050808},
        {-0.00636996, 0.00190915, 0.02100255, 0.00120159, 0.00617203},
    };
    const double printed_b1[10] = {0.0030017,   -0.0035225, -0.01142518, -0.00349343, -0.00208894,
                                   0.00586623,  0.00838983, 0.00931102,  0.00285587,  0.00885141};
    nn::NumpyRandom rng(1);
    const auto W1 = rng.randn(10, 5) * 0.01;
    const auto b1 = rng.randn(10, 1) * 0.01;
    // Half a unit in the 8th printed decimal, plus room for the decimal rounding of the print.
    const double half_unit = 0.5e-8 + 1e-15;
    for (std::size_t i = 0; i < 10; ++i) {
        CAPTURE(i);
        for (std::size_t j = 0; j < 5; ++j) {
            CAPTURE(j);
            REQUIRE(W1(i, j) == Approx(printed_W1[i][j]).margin(half_unit).epsilon(0));
        }
        REQUIRE(b1(i, 0) == Approx(printed_b1[i]).margin(half_unit).epsilon(0));
    }
}

TEST_CASE("NumpyRandom::seed restarts the stream and drops the cached normal, as RandomState.seed does",
          "[nn][numpy_random]") {
    nn::NumpyRandom fresh(7);
    const double first = fresh.standard_normal();
    const double second = fresh.standard_normal();  // the cached partner of the first

    nn::NumpyRandom reseeded(123);
    reseeded.standard_normal();  // leaves a normal cached under seed 123
    reseeded.seed(7);
    REQUIRE(reseeded.standard_normal() == first);
    REQUIRE(reseeded.standard_normal() == second);
}

TEST_CASE("NumpyRandom::shuffle makes the same swaps as permutation on any element type", "[nn][numpy_random]") {
    std::vector<std::string> words(10);
    for (std::size_t i = 0; i < words.size(); ++i) words[i] = "w" + std::to_string(i);
    nn::NumpyRandom for_shuffle(42);
    for_shuffle.shuffle(words);
    nn::NumpyRandom for_permutation(42);
    const std::vector<std::int64_t> order = for_permutation.permutation(10);
    for (std::size_t i = 0; i < words.size(); ++i) REQUIRE(words[i] == "w" + std::to_string(order[i]));
    // Both consumed the same words: the streams continue identically.
    REQUIRE(for_shuffle.next_uint32() == for_permutation.next_uint32());
}

TEST_CASE("NumpyRandom rejects empty or negative ranges with autodiff::Error", "[nn][numpy_random]") {
    nn::NumpyRandom rng(0);
    REQUIRE_THROWS_MATCHES(rng.choice(0, 3), autodiff::Error,
                           Catch::Matchers::Message("NumpyRandom::choice: n must be positive, got 0"));
    REQUIRE_THROWS_AS(rng.choice(-4, 3), autodiff::Error);
    REQUIRE_THROWS_WITH(rng.randint(5, 5, 1), Catch::Matchers::Contains("low (5) must be less than high (5)"));
    REQUIRE_THROWS_AS(rng.permutation(-1), autodiff::Error);
    REQUIRE(rng.permutation(0).empty());
    REQUIRE(rng.choice(3, 0).empty());
}

TEST_CASE("randint, choice and permutation refuse a size past memory, naming themselves", "[nn][numpy_random]") {
    // rand and randn named theirs; these threw std::length_error ('cannot create std::vector
    // larger than max_size()') or a bare std::bad_alloc, outside tapegrad's error family.
    using Catch::Matchers::Contains;
    nn::NumpyRandom rng(0);
    REQUIRE_THROWS_WITH(rng.randint(0, 10, std::size_t(-1)),
                        Contains("NumpyRandom::randint: an array of 18446744073709551615 numbers has more bytes"));
    REQUIRE_THROWS_WITH(rng.choice(5, std::size_t(1) << 60),
                        Contains("NumpyRandom::randint: an array of 1152921504606846976 numbers needs "
                                 "9223372036854775808 bytes"));
    REQUIRE_THROWS_WITH(rng.permutation(std::int64_t(1) << 62),
                        Contains("NumpyRandom::permutation: an array of 4611686018427387904 numbers has more bytes"));
    REQUIRE(rng.randint(0, 10, 3).size() == 3);  // the generator is still usable
}
