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
    /// Appends a module owned elsewhere (it must outlive the Sequential: one destroyed first
    /// is refused by name when the Sequential next runs or is indexed).
    Module<T>& append(const std::string& name, Module<T>& module) {
        // A step destroyed first frees its name, and a module built after it may get its
        // address: appended under that name, it passed for both steps, and ran twice without
        // a word (found by an attack). A Sequential with a step gone cannot run anyway.
        require_steps_alive();
        this->register_module(name, module);
        steps_.push_back({name, &module});
        return module;
    }

    autodiff::Var<T> forward(autodiff::Var<T> x) override {
        require_steps_alive();
        for (const Step& step : steps_) x = step.module->forward(x);
        return x;
    }

    std::size_t size() const { return steps_.size(); }
    Module<T>& operator[](std::size_t i) {
        require_steps_alive();
        // std::vector::at's message named neither the model nor the count (found by an attack).
        if (i >= steps_.size())
            throw autodiff::Error(this->who() + ": no step " + std::to_string(i) + ", it has " +
                                  std::to_string(steps_.size()) + " (numbered from 0)");
        return *steps_[i].module;
    }
    std::string type() const override { return "Sequential"; }

private:
    struct Step {
        std::string name;
        Module<T>* module;
    };
    // A step destroyed before the Sequential has left its children (~Module), which moved
    // version(): the steps are looked for among them again only then.
    void require_steps_alive() {
        if (checked_version_ == this->version()) return;
        for (const Step& step : steps_)
            if (!this->has_child(step.name, *step.module))
                throw autodiff::Error(this->who() + ": step '" + step.name +
                                      "' was destroyed before the Sequential that runs it; a module given to append() "
                                      "must outlive the Sequential");
        checked_version_ = this->version();
    }

    std::deque<Step> steps_;
    std::deque<std::unique_ptr<Module<T>>> owned_;
    std::uint64_t checked_version_ = ~std::uint64_t(0);
};

}  // namespace nn
