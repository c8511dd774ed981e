#pragma once
/// @file
/// Everything a model needs from the engine.

#include "autodiff/error.hpp"
#include "autodiff/gradcheck.hpp"
#include "autodiff/matrix.hpp"
#include "autodiff/random.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "autodiff/replay.hpp"
#include "autodiff/value_and_grad.hpp"
#include "autodiff/blas_threads.hpp"
#include "autodiff/denormals.hpp"
