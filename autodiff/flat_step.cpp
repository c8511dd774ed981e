#include "autodiff/flat_step.hpp"

#include <mutex>
#include <utility>

namespace autodiff::detail {

namespace {

// A few dozen ops at most: a vector searched in order. Registered once per op, looked up
// once per entry when a Replay is built.
template <class T>
struct FlatRegistry {
    std::mutex mutex;
    std::vector<std::pair<ForwardFn<T>, FlatOp<T>>> kernels;
};

template <class T>
FlatRegistry<T>& registry() {
    static FlatRegistry<T> instance;
    return instance;
}

}  // namespace

template <class T>
void register_flat_kernels(ForwardFn<T> op_forward, FlatOp<T> op) {
    FlatRegistry<T>& r = registry<T>();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& entry : r.kernels)
        if (entry.first == op_forward) return;
    r.kernels.emplace_back(op_forward, op);
}

template <class T>
FlatOp<T> flat_kernels_of(ForwardFn<T> op_forward) {
    FlatRegistry<T>& r = registry<T>();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& entry : r.kernels)
        if (entry.first == op_forward) return entry.second;
    return {};
}

template void register_flat_kernels<float>(ForwardFn<float>, FlatOp<float>);
template void register_flat_kernels<double>(ForwardFn<double>, FlatOp<double>);
template FlatOp<float> flat_kernels_of<float>(ForwardFn<float>);
template FlatOp<double> flat_kernels_of<double>(ForwardFn<double>);

}  // namespace autodiff::detail
