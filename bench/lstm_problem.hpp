// bench/lstm_problem.hpp: the recurrent workload (issue 15) and its data, shared by the
// hand-written reference (lstm_handwritten.hpp), tapegrad (lstm_tapegrad.hpp) and PyTorch
// (lstm_pytorch.py, which draws the same numbers with the same generator).
//
// A stacked diagonal LSTM over a character sequence, hidden size n = alphabet size = 14.
// Per layer l and step t, with x the layer's input (the one-hot character for layer 0, the
// layer below's h otherwise) and h, c the layer's own state from step t-1 (zero at t = 0):
//   f = σ(x⊙W_f + b_f)   i = σ(h⊙W_i + b_i)   o = σ(x⊙W_o + b_o)   g = tanh(h⊙W_c + b_c)
//   c = c⊙f + i⊙g        h = o⊙tanh(c)
// Output ŷ_t = h_top⊙w_out + b_out; loss = mean over t of −(ŷ_t[y_{t+1}] − log Σ exp ŷ_t).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bench::lstm {

// Parameter order within a layer (each an n-vector).
enum Gate : std::size_t { kWf, kBf, kWi, kBi, kWo, kBo, kWc, kBc, kPerLayer };

struct Problem {
    std::size_t n = 14;       // hidden size = alphabet size
    std::size_t layers = 2;
    std::size_t steps = 1024;
    std::vector<std::size_t> chars;               // steps + 1 characters in [0, n)
    std::vector<std::vector<double>> layer_params;  // [layer * kPerLayer + gate][n]
    std::vector<double> w_out, b_out;             // [n]
};

// A 64-bit LCG (Knuth's MMIX constants); lstm_pytorch.py implements the same one, so both
// sides start from identical numbers without a data file.
class Lcg {
public:
    explicit Lcg(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
        return state_ >> 11;  // 53 bits
    }
    double uniform(double lo, double hi) { return lo + (hi - lo) * double(next()) * 0x1p-53; }

private:
    std::uint64_t state_;
};

inline Problem make_problem(std::size_t layers, std::size_t steps, std::size_t n = 14) {
    Problem p;
    p.n = n;
    p.layers = layers;
    p.steps = steps;
    Lcg rng(20261128);
    auto vec = [&] {
        std::vector<double> v(n);
        for (double& x : v) x = rng.uniform(-0.5, 0.5);
        return v;
    };
    for (std::size_t k = 0; k < layers * kPerLayer; ++k) p.layer_params.push_back(vec());
    p.w_out = vec();
    p.b_out = vec();
    p.chars.resize(steps + 1);
    for (std::size_t& c : p.chars) c = std::size_t(rng.next() % n);
    return p;
}

// Gradients in the same layout as the parameters.
struct Gradient {
    std::vector<std::vector<double>> layer_params;
    std::vector<double> w_out, b_out;
};

}  // namespace bench::lstm
