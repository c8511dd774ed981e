#pragma once
/// @file
/// Text of float64 arrays exactly as NumPy 1.24 prints them with its default print options
/// (precision 8, floatmode 'maxprec', suppress False, sign '-', linewidth 75, threshold 1000,
/// edgeitems 3), so the demo's output can be diffed character for character against the
/// NumPy notebook it ports. The rules follow numpy/core/arrayprint.py: FloatingFormat picks
/// positional or scientific notation and common paddings from all the printed values, and
/// _formatArray wraps rows at the line width with hanging indents. Arrays of more than 1000
/// elements are summarised with "..." and three edge items per axis, as NumPy does.
/// Checked against NumPy's own output by tests/nn/numpy_format_test.cpp.
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace nn {

/// repr(a): "array([[ 0.01624345, -0.00611756],\n       [ ...]])".
/// Empty arrays print as NumPy does: "array([], shape=(0, 3), dtype=float64)".
std::string array_repr(const xt::xtensor<double, 2>& a);
std::string array_repr(const xt::xtensor<double, 1>& a);

/// str(a), which is what print(a) shows: "[[ 0.01624345 -0.00611756]\n [ ...]]".
std::string array_str(const xt::xtensor<double, 2>& a);
std::string array_str(const xt::xtensor<double, 1>& a);

/// str(tuple(arrays)), which is what print(tuple) shows: "(" + ", ".join(reprs) + ")",
/// with Python's "(x,)" for a single element and "()" for none.
std::string tuple_repr(const std::vector<xt::xtensor<double, 2>>& arrays);

}  // namespace nn
