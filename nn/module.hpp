#pragma once
/// @file
/// nn::Module: a model that owns named parameters, buffers and child modules, and lists them
/// all, recursively, under hierarchical names ("encoder.W", "block2.conv.b"), so that the
/// optimizer and the checkpoint take the model whole and no parameter is forgotten.
///
/// Declaring is registering: a layer writes
///     autodiff::Parameter<T>& W = add_parameter("W", initial);
/// as a member, and a model registers its parts once in its constructor:
///     register_modules({{"conv1", conv1}, {"head", head}});
/// A parameter the model uses without registering it is reported by check_registered (the
/// Trainer calls it after every backward), naming it, instead of silently never training.
///
/// Modules are neither copied nor moved: the tape and the optimizers hold parameters by
/// address, and a moved module would leave them pointing at the old place. Keep models where
/// they were built (members, locals, std::unique_ptr, std::deque::emplace_back).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "autodiff/tape.hpp"

namespace nn {

template <class T = double>
class Module {
public:
    template <class Item>
    struct Named {
        std::string name;
        Item* item;
    };
    using NamedParameter = Named<autodiff::Parameter<T>>;
    using NamedBuffer = Named<autodiff::Matrix<T>>;
    using NamedModule = Named<Module<T>>;
    /// One entry of register_modules' list: {"name", child}.
    struct Child {
        std::string name;
        Module<T>& module;
    };

    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    Module(Module&&) = delete;
    Module& operator=(Module&&) = delete;
    /// A module's children and parent forget it: a child that outlives its parent may be
    /// registered again (and is never led into the parent's freed memory), and is named again
    /// as before any parent registered it; a child destroyed first leaves its parent's list.
    virtual ~Module();

    /// The computation on one input (features x examples): what Sequential and the Trainer
    /// call. A model with one input overrides it; the default throws, naming the module.
    virtual autodiff::Var<T> forward(autodiff::Var<T> x);
    autodiff::Var<T> operator()(autodiff::Var<T> x) { return forward(x); }

    /// Every parameter of this module and its descendants, in registration order, depth
    /// first; a parameter reached twice (shared between layers) is listed once.
    std::vector<NamedParameter> named_parameters();
    std::vector<autodiff::Parameter<T>*> parameters();
    /// Buffers: state that is saved but not trained (batch norm's running statistics).
    std::vector<NamedBuffer> named_buffers();
    /// Every descendant module (not this one), depth first, by full name.
    std::vector<NamedModule> named_modules();
    std::size_t parameter_count();  ///< numbers in all parameters

    /// Training mode (the default) or evaluation mode, for this module and every descendant:
    /// dropout and batch norm behave differently in each.
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    /// Moves whenever what this module's forward records may have changed: a module
    /// registered in its tree or leaving it, a parameter or buffer added, a mode switched
    /// (only when some module's mode actually flips). nn::ReplayedStep records afresh when it
    /// moved, instead of replaying a step recorded for another tree or mode.
    std::uint64_t version() const { return version_; }

    void zero_grad();

    /// Whether a training step of this module may be recorded once and replayed
    /// (nn::ReplayedStep, the Trainer's default): a replay re-runs the recorded tape entries
    /// on the new batch, so anything the forward computed outside the tape stays as it was
    /// in the first batch. A module of your own must return false when its forward reads
    /// values (x.value()) to decide what it records: ids, indices, a branch or a shape taken
    /// from the data (nn::Embedding does). The default is true when every child says so.
    virtual bool replayable() const;

    /// Its path from the root model ("block2.conv"); until a parent registers it, the name given
    /// by a layer's name argument, else empty (who() then gives its description).
    const std::string& name() const { return name_; }
    /// What kind of module this is ("Linear").
    virtual std::string type() const { return "Module"; }
    /// One line a reader can understand, and for built-in layers one that rebuilds it:
    /// "Linear(784, 256)". Composite modules list their children.
    virtual std::string describe() const;
    /// A tree of the modules with their parameters' shapes, one line per module.
    std::string summary();
    /// How errors name this module: "conv1 (Conv2d(1, 8, 3))", or its description alone
    /// while no parent has registered it.
    std::string who() const;

protected:
    Module() = default;

    /// A parameter owned by this module, at an address that never changes.
    autodiff::Parameter<T>& add_parameter(const std::string& name, autodiff::Matrix<T> initial);
    /// A parameter owned elsewhere (it must outlive this module: one destroyed or moved from
    /// first is refused, by name, by whatever reads it next).
    autodiff::Parameter<T>& register_parameter(const std::string& name, autodiff::Parameter<T>& parameter);
    /// A buffer owned by this module.
    autodiff::Matrix<T>& add_buffer(const std::string& name, autodiff::Matrix<T> initial);
    /// A child: its parameters, buffers and mode become this module's, under "name.".
    template <class M>
    M& register_module(const std::string& name, M& child) {
        attach(name, child);
        return child;
    }
    void register_modules(std::initializer_list<Child> children) {
        for (const Child& c : children) attach(c.name, c.module);
    }
    /// Whether `module` is registered here still under `name` (a child destroyed first has
    /// left the list). `module` is compared, never read: it may be gone.
    bool has_child(const std::string& name, const Module<T>& module) const {
        const auto it = names_.find(name);
        return it != names_.end() && it->second == &module;
    }
    /// The name a module has until a parent registers it (Linear's legacy name argument).
    void set_default_name(const std::string& name) {
        default_name_ = name;
        if (parent_ == nullptr) rename(name);
    }

private:
    void attach(const std::string& name, Module<T>& child);
    // longest_below: the longest name under a child registered as `name` (longest_name()).
    void check_new_name(const std::string& name, std::size_t longest_below = 0) const;
    std::size_t longest_name() const;
    const std::vector<NamedParameter>& live_parameters() const;  // parameters_, once each is checked alive
    void rename(const std::string& path);  // sets the full names of this subtree
    bool set_training(bool on);            // this subtree's modes; whether any flipped
    void changed();                        // moves version() of this module and its ancestors
    // children_ without the departed. Only what may change the module sweeps: its const
    // members skip the null places instead, so that concurrent reads stay reads.
    const std::vector<NamedModule>& children();
    template <class Item, class Get>
    static void collect(Module<T>& m, const std::string& prefix, std::vector<Named<Item>>& out,
                        std::unordered_set<const Item*>& seen, Get get);

    std::deque<autodiff::Parameter<T>> owned_parameters_;  // a deque: addresses never move
    std::deque<autodiff::Matrix<T>> owned_buffers_;
    std::vector<NamedParameter> parameters_;  // local names
    std::vector<autodiff::ParameterIdentity<T>> identities_;  // of parameters_[i]: alive still?
    std::vector<NamedBuffer> buffers_;
    // A child destroyed before its parent leaves a null item here (departed_ counts them),
    // swept out by children() on the next read: erasing it at once made destroying a module
    // of n children take n^2 steps (30,000 layers: 2.3 s).
    std::vector<NamedModule> children_;
    std::size_t departed_ = 0;
    std::unordered_map<std::string, const void*> names_;  // every local name taken, and what it names
    std::string name_;
    std::string default_name_;  // set_default_name's: the name it returns to when its parent goes
    Module<T>* parent_ = nullptr;
    std::size_t index_in_parent_ = 0;  // where this module is in parent_->children_
    bool training_ = true;
    std::uint64_t version_ = 0;
};

/// Throws autodiff::Error naming every parameter recorded on `tape` (so receiving a
/// gradient) that `model` does not list: an optimizer built from model.parameters() would
/// never update it.
template <class T>
void check_registered(const autodiff::Tape<T>& tape, Module<T>& model);

}  // namespace nn
