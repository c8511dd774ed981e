#include "nn/module.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_set>

#include "nn/io/checkpoint.hpp"

namespace nn {

using autodiff::Error;
using autodiff::Matrix;
using autodiff::Parameter;

namespace {

// Names become parts of file names in checkpoints, and '.' separates the levels.
bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name[0] == '_' || name[0] == '-') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

}  // namespace

template <class T>
autodiff::Var<T> Module<T>::forward(autodiff::Var<T>) {
    throw Error(who() + ": this module does not define forward(x); override it to use the module in a "
                        "Sequential or a Trainer");
}

// The longest name under this module, relative to it ("conv.W"): with the module's own path
// in front it becomes a checkpoint's file name.
template <class T>
std::size_t Module<T>::longest_name() const {
    std::size_t longest = 0;
    for (const NamedParameter& p : parameters_) longest = std::max(longest, p.name.size());
    for (const NamedBuffer& b : buffers_) longest = std::max(longest, b.name.size());
    for (const NamedModule& c : children_)
        if (c.item != nullptr) longest = std::max(longest, c.name.size() + 1 + c.item->longest_name());
    return longest;
}

template <class T>
void Module<T>::check_new_name(const std::string& name, std::size_t longest_below) const {
    // A checkpoint saves each array under its full name: one longer than a save takes was
    // refused only by the save, after training (found by two attacks).
    const std::size_t full = (name_.empty() ? 0 : name_.size() + 1) + name.size() + (longest_below ? 1 + longest_below : 0);
    if (full > max_array_name_length)
        throw Error(who() + ": cannot register '" + name + "': it makes a full name of " + std::to_string(full) +
                    " characters, and a checkpoint takes names of at most " + std::to_string(max_array_name_length));
    if (!valid_name(name))
        throw Error(who() + ": cannot register '" + name +
                    "': a name is 1 to 64 letters, digits, '_' or '-', starting with a letter or digit (it becomes part of file names)");
    // A checkpoint keeps the model's arrays beside its manifest and its optimizer's state
    // ("optimizer.m.0"): a parameter named 'manifest' was refused only by the save, and a
    // module named 'optimizer' had its arrays taken for optimizer state (found by an attack).
    if (name == "manifest" || name == "optimizer")
        throw Error(who() + ": cannot register '" + name + "': the name is reserved by checkpoints (their manifest "
                    "and the optimizer's state)");
    if (names_.count(name) != 0)
        throw Error(who() + ": the name '" + name + "' is registered already");
}

template <class T>
Parameter<T>& Module<T>::add_parameter(const std::string& name, Matrix<T> initial) {
    check_new_name(name);
    owned_parameters_.emplace_back(std::move(initial), name_.empty() ? name : name_ + "." + name);
    names_.emplace(name, &owned_parameters_.back());
    parameters_.push_back({name, &owned_parameters_.back()});
    identities_.emplace_back(owned_parameters_.back());
    changed();
    return owned_parameters_.back();
}

template <class T>
Parameter<T>& Module<T>::register_parameter(const std::string& name, Parameter<T>& parameter) {
    check_new_name(name);
    names_.emplace(name, &parameter);
    parameters_.push_back({name, &parameter});
    identities_.emplace_back(parameter);
    changed();
    if (parameter.name.empty()) parameter.name = name_.empty() ? name : name_ + "." + name;
    return parameter;
}

// A parameter registered from elsewhere lives as long as its owner keeps it: one destroyed
// (or moved from) before this module is named here, before anything reads it, instead of
// being read in freed memory by an optimizer built from parameters(), zero_grad or a save.
template <class T>
const std::vector<typename Module<T>::NamedParameter>& Module<T>::live_parameters() const {
    for (std::size_t i = 0; i < parameters_.size(); ++i)
        if (!identities_[i].alive())
            throw Error(who() + ": parameter '" + parameters_[i].name +
                        "' (registered with register_parameter) was destroyed or moved from before the module; a "
                        "parameter registered from elsewhere must outlive the module and stay where it is");
    return parameters_;
}

template <class T>
Matrix<T>& Module<T>::add_buffer(const std::string& name, Matrix<T> initial) {
    check_new_name(name);
    owned_buffers_.push_back(std::move(initial));
    names_.emplace(name, &owned_buffers_.back());
    buffers_.push_back({name, &owned_buffers_.back()});
    changed();
    return owned_buffers_.back();
}

template <class T>
Module<T>::~Module() {
    // A child that outlives this module kept its path under it ("encoder.W"): its optimizer's
    // state, saved, was then refused by a fresh model of its kind ("saved for the parameters
    // encoder.W, encoder.b ... but this optimizer's are W, b"), and errors named a parent gone
    // (found by an attack). It takes the names it had before it was registered.
    for (NamedModule& c : children_) {
        if (c.item == nullptr) continue;
        c.item->parent_ = nullptr;
        try {
            c.item->rename(c.item->default_name_);
        } catch (...) {  // no memory for the names: they stay as they were (a destructor must not throw)
        }
    }
    if (parent_ == nullptr) return;
    NamedModule& entry = parent_->children_[index_in_parent_];
    parent_->names_.erase(entry.name);
    entry.item = nullptr;
    ++parent_->departed_;
    parent_->changed();
}

template <class T>
const std::vector<typename Module<T>::NamedModule>& Module<T>::children() {
    if (departed_ == 0) return children_;
    children_.erase(std::remove_if(children_.begin(), children_.end(), [](const NamedModule& c) { return c.item == nullptr; }),
                    children_.end());
    for (std::size_t i = 0; i < children_.size(); ++i) children_[i].item->index_in_parent_ = i;
    departed_ = 0;
    return children_;
}

template <class T>
void Module<T>::attach(const std::string& name, Module<T>& child) {
    check_new_name(name, child.longest_name());
    if (&child == this) throw Error(who() + ": a module cannot be its own child ('" + name + "')");
    if (child.parent_ != nullptr)
        throw Error(who() + ": cannot register '" + name + "': that module is registered already as '" +
                    child.name_ + "'");
    for (Module<T>* up = this; up != nullptr; up = up->parent_)
        if (up == &child) throw Error(who() + ": registering '" + name + "' would make a cycle");
    child.parent_ = this;
    child.index_in_parent_ = children_.size();
    names_.emplace(name, &child);
    children_.push_back({name, &child});
    child.rename(name_.empty() ? name : name_ + "." + name);
    child.set_training(training_);
    changed();
}

template <class T>
void Module<T>::changed() {
    for (Module<T>* m = this; m != nullptr; m = m->parent_) ++m->version_;
}

// Parents register children after the children are built, so the names grow from the leaves
// up: each registration renames the whole subtree below it with the longer path.
// An empty path: the names a module has before any parent registers it (its parent gone).
template <class T>
void Module<T>::rename(const std::string& path) {
    // A parameter keeps a name its owner gave it elsewhere; those named here follow the path.
    // One registered from elsewhere that is gone is left alone (refused where it is read).
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
        if (!identities_[i].alive()) continue;
        const std::string& local = parameters_[i].name;
        std::string& name = parameters_[i].item->name;
        if (name.empty() || name == (name_.empty() ? local : name_ + "." + local)) name = path.empty() ? local : path + "." + local;
    }
    name_ = path;
    for (const NamedModule& c : children()) c.item->rename(path.empty() ? c.name : path + "." + c.name);
}

template <class T>
template <class Item, class Get>
void Module<T>::collect(Module<T>& m, const std::string& prefix, std::vector<Named<Item>>& out,
                        std::unordered_set<const Item*>& seen, Get get) {
    for (const Named<Item>& e : get(m))
        if (seen.insert(e.item).second) out.push_back({prefix + e.name, e.item});
    for (const NamedModule& c : m.children()) collect(*c.item, prefix + c.name + ".", out, seen, get);
}

template <class T>
std::vector<typename Module<T>::NamedParameter> Module<T>::named_parameters() {
    std::vector<NamedParameter> out;
    std::unordered_set<const Parameter<T>*> seen;
    collect<Parameter<T>>(*this, "", out, seen, [](Module<T>& m) -> const auto& { return m.live_parameters(); });
    return out;
}

template <class T>
std::vector<Parameter<T>*> Module<T>::parameters() {
    std::vector<Parameter<T>*> out;
    for (const NamedParameter& p : named_parameters()) out.push_back(p.item);
    return out;
}

template <class T>
std::vector<typename Module<T>::NamedBuffer> Module<T>::named_buffers() {
    std::vector<NamedBuffer> out;
    std::unordered_set<const Matrix<T>*> seen;
    collect<Matrix<T>>(*this, "", out, seen, [](Module<T>& m) -> const auto& { return m.buffers_; });
    return out;
}

template <class T>
std::vector<typename Module<T>::NamedModule> Module<T>::named_modules() {
    std::vector<NamedModule> out;
    for (const NamedModule& c : children()) {
        out.push_back(c);
        for (const NamedModule& d : c.item->named_modules()) out.push_back({c.name + "." + d.name, d.item});
    }
    return out;
}

template <class T>
std::size_t Module<T>::parameter_count() {
    std::size_t n = 0;
    for (const NamedParameter& p : named_parameters()) n += p.item->value.size();
    return n;
}

template <class T>
void Module<T>::train(bool on) {
    // The Trainer calls train() every epoch: a call that flips nothing must not make the
    // replayed steps record afresh.
    if (set_training(on) && parent_ != nullptr) parent_->changed();
}

template <class T>
bool Module<T>::set_training(bool on) {
    bool flipped = training_ != on;
    training_ = on;
    for (const NamedModule& c : children()) flipped = c.item->set_training(on) || flipped;
    if (flipped) ++version_;
    return flipped;
}

template <class T>
void Module<T>::zero_grad() {
    // Walks the tree instead of calling parameters(), which allocates: training loops call
    // this every step. A shared parameter is simply zeroed twice.
    for (const NamedParameter& p : live_parameters()) p.item->zero_grad();
    for (const NamedModule& c : children()) c.item->zero_grad();
}

template <class T>
bool Module<T>::replayable() const {
    return std::all_of(children_.begin(), children_.end(),
                       [](const NamedModule& c) { return c.item == nullptr || c.item->replayable(); });
}

template <class T>
std::string Module<T>::describe() const {
    std::string s = type() + "(";
    const char* separator = "";
    for (const NamedModule& c : children_) {
        if (c.item == nullptr) continue;
        s += separator + c.name + "=" + c.item->describe();
        separator = ", ";
    }
    return s + ")";
}

template <class T>
std::string Module<T>::summary() {
    std::ostringstream out;
    out << (name_.empty() ? type() : name_) << ": " << describe() << ", " << parameter_count() << " parameters\n";
    for (const NamedModule& m : named_modules()) {
        out << "  " << m.name << ": " << m.item->describe();
        for (const NamedParameter& p : m.item->live_parameters()) out << "  " << p.name << " " << autodiff::to_string(p.item->shape());
        out << "\n";
    }
    return out.str();
}

template <class T>
std::string Module<T>::who() const {
    return name_.empty() ? describe() : name_ + " (" + describe() + ")";
}

template <class T>
void check_registered(const autodiff::Tape<T>& tape, Module<T>& model) {
    std::vector<const Parameter<T>*> known;
    for (Parameter<T>* p : model.parameters()) known.push_back(p);
    std::sort(known.begin(), known.end());
    std::set<const Parameter<T>*> missing;
    for (std::size_t i = 0; i < tape.size(); ++i) {
        const Parameter<T>* p = tape.entry(i).parameter;
        if (p != nullptr && !std::binary_search(known.begin(), known.end(), p)) missing.insert(p);
    }
    if (missing.empty()) return;
    std::string names;
    for (const Parameter<T>* p : missing)
        names += (names.empty() ? "'" : ", '") + (p->name.empty() ? std::string("(unnamed)") : p->name) + "' (" +
                 autodiff::to_string(p->shape()) + ")";
    throw Error((model.name().empty() ? model.describe() : model.name()) + ": the parameter(s) " + names +
                " took part in the computation but are not registered in the model, so no optimizer or checkpoint "
                "sees them; declare them with add_parameter or register_parameter");
}

template class Module<float>;
template class Module<double>;
template void check_registered<float>(const autodiff::Tape<float>&, Module<float>&);
template void check_registered<double>(const autodiff::Tape<double>&, Module<double>&);

}  // namespace nn
