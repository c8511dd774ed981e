#pragma once
/// @file
/// How many threads OpenBLAS may use for the matrix products. Small products are slowed
/// down by threads (the hand-off costs more than the work), so programs that train small
/// models set 1; large products may use every core.

namespace autodiff {

void set_blas_threads(int threads);  ///< throws autodiff::Error if threads < 1
int blas_threads();

}  // namespace autodiff
