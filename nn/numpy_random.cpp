// Built with -ffp-contract=off (nn/CMakeLists.txt): NumPy's C code rounds every product in
// legacy_gauss separately, and a fused multiply-add would change the last bits of randn.
#include "nn/numpy_random.hpp"

#include <cmath>
#include <string>

#include "autodiff/error.hpp"
#include "nn/allocate.hpp"

namespace nn {

namespace {

// The smallest all-ones mask covering max: draws are masked to it, then rejected if > max.
std::uint64_t covering_mask(std::uint64_t max) {
    std::uint64_t mask = max;
    for (unsigned shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
    return mask;
}

}  // namespace

NumpyRandom::NumpyRandom(std::uint32_t seed) { this->seed(seed); }

void NumpyRandom::seed(std::uint32_t seed) {
    // Knuth's multiplicative recurrence (MT19937 init_genrand), as NumPy's mt19937_seed.
    key_[0] = seed;
    for (std::size_t i = 1; i < state_size; ++i) {
        const std::uint32_t previous = key_[i - 1];
        key_[i] = 1812433253u * (previous ^ (previous >> 30)) + static_cast<std::uint32_t>(i);
    }
    pos_ = state_size;  // the first draw twists
    // RandomState.seed() resets the cached normal too: a reseed must not leak the old stream.
    has_gauss_ = false;
    gauss_ = 0.0;
}

void NumpyRandom::twist() {
    constexpr std::size_t shift = 397;
    constexpr std::uint32_t matrix_a = 0x9908b0dfu;
    for (std::size_t i = 0; i < state_size; ++i) {
        const std::uint32_t y = (key_[i] & 0x80000000u) | (key_[(i + 1) % state_size] & 0x7fffffffu);
        key_[i] = key_[(i + shift) % state_size] ^ (y >> 1) ^ ((y & 1u) ? matrix_a : 0u);
    }
    pos_ = 0;
}

std::uint32_t NumpyRandom::next_uint32() {
    if (pos_ == state_size) twist();
    std::uint32_t y = key_[pos_++];
    // MT19937 tempering.
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

std::uint64_t NumpyRandom::next_uint64() {
    const std::uint64_t high = next_uint32();
    return (high << 32) | next_uint32();
}

double NumpyRandom::uniform() {
    // 27 + 26 = 53 random bits, the full mantissa of a double in [0, 1).
    const std::uint32_t a = next_uint32() >> 5;
    const std::uint32_t b = next_uint32() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandom::standard_normal() {
    if (has_gauss_) {
        has_gauss_ = false;
        const double cached = gauss_;
        gauss_ = 0.0;
        return cached;
    }
    // Polar method: a uniform point in the unit disc (origin excluded) yields two normals.
    double x1 = 0.0, x2 = 0.0, r2 = 0.0;
    do {
        x1 = 2.0 * uniform() - 1.0;
        x2 = 2.0 * uniform() - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = std::sqrt(-2.0 * std::log(r2) / r2);
    // NumPy returns the x2 one now and keeps the x1 one for the next call.
    gauss_ = f * x1;
    has_gauss_ = true;
    return f * x2;
}

xt::xtensor<double, 2> NumpyRandom::rand(std::size_t rows, std::size_t cols) {
    xt::xtensor<double, 2> out = allocate_matrix<double>("NumpyRandom::rand", rows, cols);
    for (double& value : out) value = uniform();  // row-major, as NumPy's C-order fill
    return out;
}

xt::xtensor<double, 2> NumpyRandom::randn(std::size_t rows, std::size_t cols) {
    xt::xtensor<double, 2> out = allocate_matrix<double>("NumpyRandom::randn", rows, cols);
    for (double& value : out) value = standard_normal();
    return out;
}

std::uint64_t NumpyRandom::interval(std::uint64_t max) {
    if (max == 0) return 0;
    const std::uint64_t mask = covering_mask(max);
    std::uint64_t value = 0;
    // One 32-bit word per try while the range fits, so the stream matches NumPy's.
    if (max <= 0xffffffffu) {
        do value = next_uint32() & mask; while (value > max);
    } else {
        do value = next_uint64() & mask; while (value > max);
    }
    return value;
}

std::vector<std::int64_t> NumpyRandom::randint(std::int64_t low, std::int64_t high, std::size_t size) {
    if (low >= high) {
        throw autodiff::Error("NumpyRandom::randint: low (" + std::to_string(low) +
                              ") must be less than high (" + std::to_string(high) + ")");
    }
    // NumPy draws offsets in [0, high-1-low] over unsigned 64-bit arithmetic (no overflow).
    const std::uint64_t range = static_cast<std::uint64_t>(high) - 1u - static_cast<std::uint64_t>(low);
    std::vector<std::int64_t> out = allocate_vector<std::int64_t>("NumpyRandom::randint", size);
    for (std::int64_t& value : out) {
        // A single-valued range consumes no randomness in NumPy; interval(0) does the same.
        // The full 32-bit range is drawn raw, which masked rejection also reproduces exactly.
        value = static_cast<std::int64_t>(static_cast<std::uint64_t>(low) + interval(range));
    }
    return out;
}

std::vector<std::int64_t> NumpyRandom::choice(std::int64_t n, std::size_t size) {
    if (n <= 0) {
        throw autodiff::Error("NumpyRandom::choice: n must be positive, got " + std::to_string(n));
    }
    return randint(0, n, size);
}

std::vector<std::int64_t> NumpyRandom::permutation(std::int64_t n) {
    if (n < 0) {
        throw autodiff::Error("NumpyRandom::permutation: n must be non-negative, got " +
                              std::to_string(n));
    }
    std::vector<std::int64_t> values = allocate_vector<std::int64_t>("NumpyRandom::permutation", std::size_t(n));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int64_t>(i);
    shuffle(values);
    return values;
}

}  // namespace nn
