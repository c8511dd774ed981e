#pragma once
// Seeded random inputs for the engine's tests.

#include <random>

#include "autodiff/matrix.hpp"

namespace test {

using autodiff::Matrix;
using autodiff::Shape;

// Uniform in [low, high], with |x| >= gap when gap > 0 (keeps relu and div away from 0,
// where a finite difference would straddle the kink).
inline Matrix<double> random_matrix(std::mt19937_64& rng, Shape s, double low = -2, double high = 2, double gap = 0) {
    std::uniform_real_distribution<double> uniform(low, high);
    Matrix<double> m({s.rows, s.cols});
    for (double& x : m) {
        do x = uniform(rng);
        while (gap > 0 && std::abs(x) < gap);
    }
    return m;
}

inline Matrix<double> one_hot(std::mt19937_64& rng, std::size_t classes, std::size_t examples) {
    Matrix<double> Y = xt::zeros<double>({classes, examples});
    std::uniform_int_distribution<std::size_t> pick(0, classes - 1);
    for (std::size_t j = 0; j < examples; ++j) Y(pick(rng), j) = 1.0;
    return Y;
}

// The sweep every op is checked over: 1x1, 1xm, nx1 and n x m, with n and m drawn at random.
inline std::vector<Shape> sweep_shapes(std::mt19937_64& rng, int random_cases = 3) {
    std::vector<Shape> shapes = {{1, 1}};
    std::uniform_int_distribution<std::size_t> size(2, 9);
    for (int c = 0; c < random_cases; ++c) {
        const std::size_t n = size(rng), m = size(rng);
        shapes.push_back({1, m});
        shapes.push_back({n, 1});
        shapes.push_back({n, m});
    }
    return shapes;
}

}  // namespace test
