/// @file
/// nn::NumpyRandom: the stream of NumPy's legacy `np.random` (RandomState over MT19937),
/// bit for bit, so that a seeded C++ run starts from exactly the numbers the notebook saw.
///
/// What "legacy" pins down (numpy/random/mtrand.pyx and the C sources under numpy/random/src):
///   seed(s)          MT19937 init_genrand(s) (`_legacy_seeding` -> `mt19937_seed`); cached gauss dropped
///   uniform()        random_sample(): 53 bits from two 32-bit words, (a>>5, b>>6)
///   standard_normal  legacy_gauss: Marsaglia polar method, the second value cached for the next call
///   randint/choice   masked rejection sampling (never Lemire), 32-bit draws when the range fits
///   shuffle          Fisher-Yates from the back with random_interval(i)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace nn {

class NumpyRandom {
public:
    /// np.random.seed(seed); every seed NumPy accepts as an integer (0 .. 2**32-1) fits here.
    explicit NumpyRandom(std::uint32_t seed);
    void seed(std::uint32_t seed);

    /// Raw MT19937 words, as the bit generator hands them to every distribution.
    std::uint32_t next_uint32();
    std::uint64_t next_uint64();  ///< high word drawn first

    double uniform();          ///< one np.random.random_sample()
    double standard_normal();  ///< one np.random.standard_normal()

    /// np.random.rand(rows, cols) / np.random.randn(rows, cols): filled in row-major order.
    xt::xtensor<double, 2> rand(std::size_t rows, std::size_t cols);
    xt::xtensor<double, 2> randn(std::size_t rows, std::size_t cols);

    /// np.random.randint(low, high, size) with the default int64 dtype: values in [low, high).
    std::vector<std::int64_t> randint(std::int64_t low, std::int64_t high, std::size_t size);
    /// np.random.choice(n, size): uniform, with replacement; legacy routes it through randint(0, n).
    std::vector<std::int64_t> choice(std::int64_t n, std::size_t size);

    /// NumPy's random_interval: uniform in [0, max] by masked rejection (shuffle's building block).
    std::uint64_t interval(std::uint64_t max);

    /// np.random.shuffle on a 1-D array: in place, same swaps as NumPy for any element type.
    template <class Container>
    void shuffle(Container& values);
    /// np.random.permutation(n): a shuffled arange(n).
    std::vector<std::int64_t> permutation(std::int64_t n);

private:
    void twist();

    static constexpr std::size_t state_size = 624;
    std::array<std::uint32_t, state_size> key_{};
    std::size_t pos_ = state_size;
    /// legacy_gauss produces normals in pairs; the unused one waits here until the next call.
    bool has_gauss_ = false;
    double gauss_ = 0.0;
};

template <class Container>
void NumpyRandom::shuffle(Container& values) {
    using std::swap;
    /// NumPy walks i = n-1 .. 1 and always draws, even when the swap is a no-op.
    for (std::size_t i = values.size(); i-- > 1;) {
        const auto j = static_cast<std::size_t>(interval(i));
        swap(values[i], values[j]);
    }
}

}  // namespace nn
