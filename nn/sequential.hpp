#pragma once
/// @file
/// Sequential: modules applied one after the other, named "0", "1", ... as in PyTorch
/// ("0.W", "2.b"), or by the names given to append().

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "nn/module.hpp"

namespace nn {

template <class T = double>
class Sequential : public Module<T> {
public:
    Sequential() = default;

    /// Builds a module of type M in place, owned by the Sequential; returns it.
    template <class M, class... Args>
    M& add(Args&&... args) {
        auto module = std::make_unique<M>(std::forward<Args>(args)...);
        M& m = *module;
        append(std::to_string(size()), m);
        owned_.push_back(std::move(module));
        return m;
    }
    /// Appends a module owned elsewhere (it must outlive the Sequential).
    Module<T>& append(const std::string& name, Module<T>& module) {
        this->register_module(name, module);
        steps_.push_back(&module);
        return module;
    }

    autodiff::Var<T> forward(autodiff::Var<T> x) override {
        for (Module<T>* m : steps_) x = m->forward(x);
        return x;
    }

    std::size_t size() const { return steps_.size(); }
    Module<T>& operator[](std::size_t i) { return *steps_.at(i); }
    std::string type() const override { return "Sequential"; }

private:
    std::deque<Module<T>*> steps_;
    std::deque<std::unique_ptr<Module<T>>> owned_;
};

}  // namespace nn
