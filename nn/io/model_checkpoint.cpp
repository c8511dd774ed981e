#include "nn/io/model_checkpoint.hpp"

#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

namespace nn {

namespace {

const std::string optimizer_prefix = "optimizer.";

std::string join(const std::vector<std::size_t>& sizes) {
    std::string s;
    for (std::size_t n : sizes) s += (s.empty() ? "" : ",") + std::to_string(n);
    return s;
}

// A whole number from the manifest; DataError naming the key otherwise (stoul alone would
// take "-1" as 2^64 - 1).
std::size_t parse_count(const std::string& text, const std::string& key, const std::filesystem::path& dir) {
    const bool digits = !text.empty() && text.size() <= 12 && text.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) throw DataError((dir / "manifest.json").string() + ": " + key + " '" + text + "' is not a whole number");
    return std::stoul(text);
}

std::vector<std::size_t> parse_sizes(const std::string& text, const std::filesystem::path& dir) {
    std::vector<std::size_t> sizes;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) sizes.push_back(parse_count(item, "layer_sizes", dir));
    return sizes;
}

const std::string& meta(const Checkpoint& c, const std::string& key, const std::filesystem::path& dir) {
    auto it = c.meta.find(key);
    if (it == c.meta.end()) throw DataError((dir / "manifest.json").string() + ": no '" + key + "' entry");
    return it->second;
}

// The manifest's layer sizes must be those of its arrays before a network of that size is
// built: a 60 KB checkpoint claiming 100000-wide layers must not allocate gigabytes.
void check_sizes_match_arrays(const Checkpoint& c, const std::vector<std::size_t>& sizes,
                              const std::filesystem::path& dir) {
    const std::string manifest = (dir / "manifest.json").string();
    if (sizes.size() < 2) throw DataError(manifest + ": layer_sizes needs at least the input and output sizes");
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
        const std::string W = "W" + std::to_string(l + 1), b = "b" + std::to_string(l + 1);
        for (const auto& [name, rows, cols] : {std::tuple{W, sizes[l + 1], sizes[l]}, std::tuple{b, sizes[l + 1], std::size_t(1)}}) {
            const auto it = c.arrays.find(name);
            if (it == c.arrays.end()) throw DataError(manifest + ": layer_sizes needs an array " + name + ", which it lacks");
            const auto shape = std::visit([](const auto& a) { return std::pair{a.shape(0), a.shape(1)}; }, it->second);
            if (shape != std::pair{rows, cols}) {
                throw DataError(manifest + ": layer_sizes " + join(sizes) + " needs " + name + " to be " +
                                std::to_string(rows) + "x" + std::to_string(cols) + ", but it is " +
                                std::to_string(shape.first) + "x" + std::to_string(shape.second));
            }
        }
    }
}

}  // namespace

template <class T>
void save_model(const std::filesystem::path& dir, const MLP<T>& net, const Optimizer<T>& optimizer, std::size_t epoch,
                const std::map<std::string, std::string>& settings) {
    Checkpoint c;
    for (const auto& [key, value] : settings) c.meta["train." + key] = value;
    c.meta["model"] = "mlp";
    c.meta["layer_sizes"] = join(net.sizes());
    c.meta["activation"] = to_string(net.hidden_activation());
    c.meta["dtype"] = sizeof(T) == 4 ? "float32" : "float64";
    c.meta["epoch"] = std::to_string(epoch);
    c.meta["optimizer"] = optimizer.name();
    for (const auto& [key, value] : optimizer.hyperparameters()) c.meta[optimizer_prefix + key] = value;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
        c.arrays["W" + std::to_string(l + 1)] = net.layers[l].W.value;
        c.arrays["b" + std::to_string(l + 1)] = net.layers[l].b.value;
    }
    for (const auto& [key, value] : optimizer.state()) c.arrays[optimizer_prefix + key] = value;
    save_checkpoint(dir, c);
}

namespace {

template <class T>
using WeightSource = std::pair<autodiff::Parameter<T>*, const autodiff::Matrix<T>*>;

// Each of the network's parameters with its saved array, after checking that every one is
// there in T with its parameter's shape and that the checkpoint has no further layer.
template <class T>
std::vector<WeightSource<T>> fitting_weights(const Checkpoint& c, MLP<T>& net) {
    std::vector<WeightSource<T>> saved;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
        for (autodiff::Parameter<T>* p : {&net.layers[l].W, &net.layers[l].b}) {
            const std::string name = (p == &net.layers[l].W ? "W" : "b") + std::to_string(l + 1);
            const autodiff::Matrix<T>& array = c.array<T>(name);
            if (array.shape() != p->value.shape())
                throw DataError("checkpoint: " + name + " is " + autodiff::to_string(autodiff::shape_of(array)) +
                                " but " + net.layers[l].name() + " of the model has " + autodiff::to_string(p->shape()));
            saved.push_back({p, &array});
        }
    }
    if (c.arrays.count("W" + std::to_string(net.layers.size() + 1)))
        throw DataError("checkpoint: it has more layers than the model's " + std::to_string(net.layers.size()));
    return saved;
}

}  // namespace

// Everything is checked before the first weight is copied: a checkpoint that does not fit
// leaves the network as it was.
template <class T>
void load_weights(const Checkpoint& c, MLP<T>& net) {
    for (const auto& [parameter, array] : fitting_weights(c, net)) {
        parameter->value = *array;
        parameter->bump_version();  // a recording made before the load refuses backward() (nn::load's reason)
        parameter->zero_grad();
    }
}

template <class T>
void restore_optimizer(const Checkpoint& c, Optimizer<T>& optimizer) {
    auto saved = c.meta.find("optimizer");
    if (saved != c.meta.end() && saved->second != optimizer.name())
        throw DataError("checkpoint: it was saved with optimizer '" + saved->second + "', not '" + optimizer.name() + "'");
    std::map<std::string, autodiff::Matrix<T>> state;
    for (const auto& [name, array] : c.arrays)
        if (name.rfind(optimizer_prefix, 0) == 0) state[name.substr(optimizer_prefix.size())] = c.array<T>(name);
    optimizer.load_state(state);
}

template <class T>
LoadedModel<T> load_model(const std::filesystem::path& dir) {
    LoadedModel<T> m;
    m.checkpoint = load_checkpoint(dir);
    const std::vector<std::size_t> sizes = parse_sizes(meta(m.checkpoint, "layer_sizes", dir), dir);
    check_sizes_match_arrays(m.checkpoint, sizes, dir);
    const Activation activation = activation_from_string(meta(m.checkpoint, "activation", dir));
    m.net = std::make_unique<MLP<T>>(sizes, activation, Init::he, 0);
    load_weights(m.checkpoint, *m.net);
    m.epoch = parse_count(meta(m.checkpoint, "epoch", dir), "epoch", dir);
    m.optimizer = meta(m.checkpoint, "optimizer", dir);
    return m;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                                \
    template void save_model<T>(const std::filesystem::path&, const MLP<T>&, const Optimizer<T>&, std::size_t,   \
                                const std::map<std::string, std::string>&);                                    \
    template LoadedModel<T> load_model<T>(const std::filesystem::path&);                                       \
    template void load_weights<T>(const Checkpoint&, MLP<T>&);                                                 \
    template void restore_optimizer<T>(const Checkpoint&, Optimizer<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace nn
