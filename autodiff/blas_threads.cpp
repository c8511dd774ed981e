#include "autodiff/blas_threads.hpp"

#include <string>

#include "autodiff/error.hpp"

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
}

namespace autodiff {

void set_blas_threads(int threads) {
    if (threads < 1) throw Error("set_blas_threads: needs at least 1 thread, got " + std::to_string(threads));
    openblas_set_num_threads(threads);
}

int blas_threads() { return openblas_get_num_threads(); }

}  // namespace autodiff
