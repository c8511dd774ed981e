#include "nn/io/module_checkpoint.hpp"

#include <algorithm>
#include <set>

namespace nn {

namespace {

const std::string optimizer_prefix = "optimizer.";

bool is_optimizer_entry(const std::string& name) { return name.rfind(optimizer_prefix, 0) == 0; }

// The optimizer's state is kept by position ("m.0"), the model's arrays by name: the names of
// the optimizer's parameters, in order, say whose state each position holds.
const std::string parameters_key = optimizer_prefix + "parameters";

// The parameters' own names: what the checkpoints saved before the model's names were used hold.
template <class T>
std::string own_names(const Optimizer<T>& optimizer) {
    std::string names;
    for (const autodiff::Parameter<T>* p : optimizer.parameters()) names += (names.empty() ? "" : ", ") + p->name;
    return names;
}

// The names the model gives the optimizer's parameters ("first.W"), in the optimizer's order
// (a parameter's own name if the model does not hold it). Not their own names: a parameter
// registered from elsewhere keeps the name its owner gave it, and two blocks whose parameters
// are both named "weight" read "weight, bias, weight, bias" in either order, so each took the
// other's state without a word (found by an attack).
template <class T>
std::string parameter_names(Module<T>& model, const Optimizer<T>& optimizer) {
    std::map<const autodiff::Parameter<T>*, std::string> full;
    for (const auto& p : model.named_parameters()) full.emplace(p.item, p.name);
    std::string names;
    for (const autodiff::Parameter<T>* p : optimizer.parameters()) {
        const auto it = full.find(p);
        names += (names.empty() ? "" : ", ") + (it != full.end() ? it->second : p->name);
    }
    return names;
}

template <class T>
std::map<std::string, autodiff::Matrix<T>*> arrays_of(Module<T>& model) {
    std::map<std::string, autodiff::Matrix<T>*> out;
    for (const auto& p : model.named_parameters()) out[p.name] = &p.item->value;
    for (const auto& b : model.named_buffers()) out[b.name] = b.item;
    return out;
}

std::string listed(const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

template <class T>
Checkpoint model_checkpoint(Module<T>& model, const std::map<std::string, std::string>& meta) {
    Checkpoint c;
    for (const auto& [key, value] : meta) {
        if (key == "module" || key == "dtype" || key == "optimizer" || is_optimizer_entry(key))
            throw autodiff::Error("nn::save: the entry '" + key + "' is the checkpoint's own; name yours otherwise");
        c.meta[key] = value;
    }
    c.meta["module"] = model.describe();
    c.meta["dtype"] = sizeof(T) == 4 ? "float32" : "float64";
    store_module(c, model);
    return c;
}

}  // namespace

template <class T>
void store_module(Checkpoint& checkpoint, Module<T>& model) {
    for (const auto& [name, array] : arrays_of(model)) {
        if (is_optimizer_entry(name))
            throw autodiff::Error("nn::save: the model's '" + name +
                                  "' would collide with the optimizer's state: rename its module 'optimizer'");
        checkpoint.arrays[name] = *array;
    }
}

namespace {

// Throws DataError, listing every missing, extra and mis-shaped name, unless `checkpoint`
// holds exactly the arrays of `model` (the optimizer's entries aside).
template <class T>
void require_module_fits(const Checkpoint& checkpoint, Module<T>& model, const std::string& where) {
    const auto wanted = arrays_of(model);
    std::vector<std::string> missing, extra, misfit;
    for (const auto& [name, array] : wanted) {
        const auto it = checkpoint.arrays.find(name);
        if (it == checkpoint.arrays.end()) {
            missing.push_back(name);
            continue;
        }
        const auto* stored = std::get_if<autodiff::Matrix<T>>(&it->second);
        if (stored == nullptr)
            misfit.push_back(name + " (stored as " + (sizeof(T) == 4 ? "float64" : "float32") + ", the model is " +
                             (sizeof(T) == 4 ? "float32" : "float64") + ")");
        else if (stored->shape() != array->shape())
            misfit.push_back(name + " (" + autodiff::to_string(autodiff::shape_of(*stored)) + " saved, " +
                             autodiff::to_string(autodiff::shape_of(*array)) + " in the model)");
    }
    for (const auto& [name, array] : checkpoint.arrays)
        if (!is_optimizer_entry(name) && wanted.count(name) == 0) extra.push_back(name);
    if (!missing.empty() || !extra.empty() || !misfit.empty()) {
        std::string msg = where + " does not fit the model " + model.describe() + ":";
        if (!missing.empty()) msg += " missing " + listed(missing) + ";";
        if (!extra.empty()) msg += " not in the model " + listed(extra) + ";";
        if (!misfit.empty()) msg += " mis-shaped " + listed(misfit) + ";";
        const auto saved = checkpoint.meta.find("module");
        if (saved != checkpoint.meta.end()) msg += " it was saved from " + saved->second;
        throw DataError(msg);
    }
}

// Copies the arrays into the model, once require_module_fits has passed. The parameters are
// changed in place, as by an optimizer's step: their versions move, so that a loss recorded
// before the load refuses backward() (its activations came from the old weights; found by an
// attack: the gradient paired them with the loaded ones, a gradient of neither model).
template <class T>
void assign_module(const Checkpoint& checkpoint, Module<T>& model) {
    for (const auto& [name, array] : arrays_of(model)) *array = checkpoint.array<T>(name);
    for (const auto& p : model.named_parameters()) p.item->bump_version();
}

// Loads the optimizer's entries of `checkpoint` into `optimizer`, which changes nothing if
// they do not fit it (Optimizer::load_state).
template <class T>
void restore_optimizer_state(const Checkpoint& checkpoint, Module<T>& model, Optimizer<T>& optimizer,
                             const std::filesystem::path& dir) {
    const auto saved = checkpoint.meta.find("optimizer");
    if (saved == checkpoint.meta.end())
        throw DataError(dir.string() + ": holds no optimizer state (saved without an optimizer)");
    if (saved->second != optimizer.name())
        throw DataError(dir.string() + ": its optimizer state is " + saved->second + "'s, not " + optimizer.name() + "'s");
    // A model whose same-shaped layers were registered in another order took each one's state
    // for another's, silently (found by an attack). Checked when the counts agree (load_state
    // says which arrays are missing or left over otherwise); older checkpoints lack the names,
    // or hold the parameters' own names (own_names), taken as they were.
    const auto names = checkpoint.meta.find(parameters_key);
    const std::string expected = parameter_names(model, optimizer);
    if (names != checkpoint.meta.end() &&
        std::count(names->second.begin(), names->second.end(), ',') + 1 == std::ptrdiff_t(optimizer.parameters().size()) &&
        names->second != expected && names->second != own_names(optimizer))
        throw DataError(dir.string() + ": its optimizer state was saved for the parameters " + names->second +
                        ", in that order, but this optimizer's are " + expected +
                        " (the model's parts registered in another order?)");
    std::map<std::string, autodiff::Matrix<T>> state;
    for (const auto& [name, array] : checkpoint.arrays)
        if (is_optimizer_entry(name)) state[name.substr(optimizer_prefix.size())] = checkpoint.array<T>(name);
    try {
        optimizer.load_state(state);
    } catch (const std::exception& e) {
        throw DataError(dir.string() + ": " + e.what());
    }
}

}  // namespace

template <class T>
void restore_module(const Checkpoint& checkpoint, Module<T>& model, const std::string& where) {
    require_module_fits(checkpoint, model, where);
    assign_module(checkpoint, model);
}

template <class T>
void save(const std::filesystem::path& dir, Module<T>& model, const Optimizer<T>& optimizer,
          const std::map<std::string, std::string>& meta) {
    Checkpoint c = model_checkpoint(model, meta);
    c.meta["optimizer"] = optimizer.name();
    for (const auto& [key, value] : optimizer.hyperparameters()) c.meta[optimizer_prefix + key] = value;
    c.meta[parameters_key] = parameter_names(model, optimizer);
    for (const auto& [key, value] : optimizer.state()) c.arrays[optimizer_prefix + key] = value;
    save_checkpoint(dir, c);
}

template <class T>
void save(const std::filesystem::path& dir, Module<T>& model, const std::map<std::string, std::string>& meta) {
    save_checkpoint(dir, model_checkpoint(model, meta));
}

template <class T>
Checkpoint load(const std::filesystem::path& dir, Module<T>& model) {
    Checkpoint c = load_checkpoint(dir);
    restore_module(c, model, dir.string());
    return c;
}

// The model is changed last, when the optimizer has taken its state: a checkpoint that does
// not fit either changes neither.
template <class T>
Checkpoint load(const std::filesystem::path& dir, Module<T>& model, Optimizer<T>& optimizer) {
    Checkpoint c = load_checkpoint(dir);
    require_module_fits(c, model, dir.string());
    restore_optimizer_state(c, model, optimizer, dir);
    assign_module(c, model);
    return c;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                   \
    template void save<T>(const std::filesystem::path&, Module<T>&, const Optimizer<T>&,                          \
                          const std::map<std::string, std::string>&);                                             \
    template void save<T>(const std::filesystem::path&, Module<T>&, const std::map<std::string, std::string>&);   \
    template Checkpoint load<T>(const std::filesystem::path&, Module<T>&, Optimizer<T>&);                         \
    template Checkpoint load<T>(const std::filesystem::path&, Module<T>&);                                        \
    template void store_module<T>(Checkpoint&, Module<T>&);                                                       \
    template void restore_module<T>(const Checkpoint&, Module<T>&, const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace nn
