// bench/engine_matrix.hpp: a bench array (row-major std::vector) as tapegrad's Matrix, for
// the engine's steps (tapegrad_step.cpp, cnn_tapegrad_step.cpp).
#pragma once

#include <algorithm>
#include <vector>

#include "autodiff/matrix.hpp"

namespace bench {

template <class T>
autodiff::Matrix<T> matrix(const std::vector<T>& data, std::size_t rows, std::size_t cols) {
    autodiff::Matrix<T> m({rows, cols});
    std::copy(data.begin(), data.end(), m.begin());
    return m;
}

}  // namespace bench
