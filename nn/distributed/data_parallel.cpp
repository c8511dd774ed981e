#include "nn/distributed/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "autodiff/error.hpp"

namespace nn::distributed {

using autodiff::Parameter;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class T>
std::string name_of(const Parameter<T>& p) {
    return p.name.empty() ? "(unnamed)" : "'" + p.name + "'";
}

// The layout of a parameter list, as the ranks compare it: sizes and 64-bit FNV-1a hashes,
// sent as doubles that hold them exactly (counts below 2^53, hashes as two 32-bit halves).
std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t n) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}
constexpr std::uint64_t fnv_offset = 14695981039346656037ull;

template <class T>
std::uint64_t name_hash(const Parameter<T>& p) { return fnv1a(fnv_offset, p.name.data(), p.name.size()); }

// Per parameter: rows, cols, and the hash of its name in two halves.
constexpr std::size_t row_width = 4;
template <class T>
void layout_row(const Parameter<T>& p, double* row) {
    const std::uint64_t h = name_hash(p);
    row[0] = double(p.value.shape()[0]);
    row[1] = double(p.value.shape()[1]);
    row[2] = double(h >> 32);
    row[3] = double(h & 0xffffffffu);
}

template <class T>
std::string shape_of(const Parameter<T>& p) {
    return std::to_string(p.value.shape()[0]) + "x" + std::to_string(p.value.shape()[1]);
}

template <class T>
std::string describe(const std::vector<Parameter<T>*>& parameters) {
    std::string s = std::to_string(parameters.size()) + " (";
    for (std::size_t k = 0; k < parameters.size() && k < 4; ++k)
        s += (k ? ", " : "") + name_of(*parameters[k]) + " " + shape_of(*parameters[k]);
    return s + (parameters.size() > 4 ? ", ...)" : ")");
}

// Every rank must list the same parameters (names, shapes, order), or the broadcast and the
// reductions would pair up unrelated arrays: silently when the sizes agree, and with a
// truncation error or a hang when they do not. Fixed-size collectives first, so a mismatch
// can neither truncate nor hang; then, only on a mismatch, rank 0's table (its length known
// to all from the first broadcast) so each rank can name the first difference it sees.
//
// The buckets too (`bucket_sizes`, numbers per bucket, as bucket_bytes cut them): ranks given
// different bucket_bytes passed with the same parameters, and then started allreduces of
// different lengths side by side (a 24-number bucket against a 12-number one: MPI_ERR_TRUNCATE,
// or sums of unrelated gradients; found by an attack).
template <class T>
void require_same_layout(Communicator& comm, const std::vector<Parameter<T>*>& parameters,
                         const std::vector<std::size_t>& bucket_sizes, std::size_t bucket_bytes) {
    if (!comm.distributed()) return;
    std::vector<double> table(parameters.size() * row_width);
    double elements = 0;
    for (std::size_t k = 0; k < parameters.size(); ++k) {
        layout_row(*parameters[k], &table[k * row_width]);
        elements += double(parameters[k]->value.size());
    }
    const std::uint64_t h = fnv1a(fnv_offset, table.data(), table.size() * sizeof(double));
    // The element size too: a DataParallel<float> on one rank beside DataParallel<double> on
    // the others matched names and shapes, and had rank 0's doubles broadcast into its floats
    // and the gradients summed across types, silently (found by an attack).
    const std::uint64_t b = fnv1a(fnv_offset, bucket_sizes.data(), bucket_sizes.size() * sizeof(std::size_t));
    const double mine[8] = {double(parameters.size()), elements, double(h >> 32), double(h & 0xffffffffu),
                            double(sizeof(T)), double(bucket_sizes.size()), double(b >> 32), double(b & 0xffffffffu)};
    double root[8];
    std::copy(mine, mine + 8, root);
    comm.broadcast(root, 8, 0);
    double differs = std::equal(mine, mine + 8, root) ? 0 : 1;
    comm.allreduce_sum(&differs, 1);
    if (differs == 0) return;

    const std::size_t root_count = std::size_t(root[0]);
    std::vector<double> root_table(root_count * row_width);
    if (comm.is_root()) root_table = table;
    comm.broadcast(root_table.data(), root_table.size(), 0);
    std::string where;
    const std::size_t common = std::min(root_count, parameters.size());
    std::size_t k = 0;
    while (k < common && std::equal(&table[k * row_width], &table[(k + 1) * row_width], &root_table[k * row_width]))
        ++k;
    const auto root_shape = [&](std::size_t i) {
        return std::to_string(std::size_t(root_table[i * row_width])) + "x" +
               std::to_string(std::size_t(root_table[i * row_width + 1]));
    };
    const auto type_name = [](double bytes) { return bytes == double(sizeof(float)) ? "float" : "double"; };
    if (root[4] != mine[4]) {
        where = std::string("; rank 0's are ") + type_name(root[4]) + " (" + std::to_string(int(root[4])) +
                " bytes each), this rank's " + type_name(mine[4]) + " (" + std::to_string(int(mine[4])) + " bytes)";
    } else if (std::equal(mine, mine + 5, root) && !std::equal(mine + 5, mine + 8, root + 5)) {
        const auto buckets = [](double count) { return std::to_string(std::size_t(count)) + (count == 1 ? " bucket" : " buckets"); };
        where = "; rank 0 packs them into " + buckets(root[5]) + " for its reductions, this rank into " +
                (root[5] == mine[5] ? "as many of other sizes" : std::to_string(bucket_sizes.size())) + " (bucket_bytes " +
                std::to_string(bucket_bytes) + "): give every rank the same bucket_bytes";
    } else if (k == common && root_count == parameters.size()) {
        where = "; this rank's agree with rank 0's, another rank's differ";
    } else if (k < common) {
        const bool same_name = root_table[k * row_width + 2] == table[k * row_width + 2] &&
                               root_table[k * row_width + 3] == table[k * row_width + 3];
        where = "; the first difference is parameter #" + std::to_string(k + 1) + ": here " + name_of(*parameters[k]) +
                " " + shape_of(*parameters[k]) + ", on rank 0 one " + root_shape(k) +
                (same_name ? " of the same name" : " of another name");
    } else if (parameters.size() > root_count) {
        where = "; rank 0 has only " + std::to_string(root_count) + ", so this rank's parameter #" +
                std::to_string(k + 1) + " " + name_of(*parameters[k]) + " " + shape_of(*parameters[k]) + " is extra";
    } else {
        where = "; rank 0 has " + std::to_string(root_count) + ", and its parameter #" + std::to_string(k + 1) + " (" +
                root_shape(k) + ") is missing here";
    }
    throw autodiff::Error("DataParallel: the parameters differ between ranks: rank " + std::to_string(comm.rank()) +
                          " of " + std::to_string(comm.size()) + " has " + describe(parameters) + where +
                          ": build the same model on every rank");
}

}  // namespace

template <class T>
DataParallel<T>::DataParallel(Communicator& comm, std::vector<Parameter<T>*> parameters, std::size_t bucket_bytes)
    : comm_(comm), listed_(parameters) {
    if (bucket_bytes == 0) throw autodiff::Error("DataParallel: the bucket size must be at least 1 byte");
    if (parameters.empty()) throw autodiff::Error("DataParallel: no parameters");
    // Last parameter first: the backward sweep finishes the last layer first.
    std::size_t bytes = 0;
    for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
        Parameter<T>* p = *it;
        if (p == nullptr) throw autodiff::Error("DataParallel: a null parameter");
        if (!slot_of_.emplace(p, slots_.size()).second)
            throw autodiff::Error("DataParallel: parameter " + name_of(*p) + " is listed twice");
        const std::size_t size = p->value.size() * sizeof(T);
        if (buckets_.empty() || (bytes > 0 && bytes + size > bucket_bytes)) {
            buckets_.emplace_back();
            bytes = 0;
        }
        Bucket& b = buckets_.back();
        slots_.push_back({p, buckets_.size() - 1, b.data.size(), p->value.size(), p->value.shape()[0], p->value.shape()[1]});
        b.slots.push_back(slots_.size() - 1);
        b.data.resize(b.data.size() + p->value.size());
        bytes += size;
    }
    std::vector<std::size_t> bucket_sizes;
    for (const Bucket& b : buckets_) bucket_sizes.push_back(b.data.size());
    require_same_layout(comm_, parameters, bucket_sizes, bucket_bytes);
    broadcast_parameters();
}

template <class T>
void DataParallel<T>::require_parameters_alive(const char* who) const {
    listed_.require_alive(who, "the DataParallel", "its parameters must outlive it and stay where they are");
}

template <class T>
void DataParallel<T>::broadcast_parameters() {
    require_parameters_alive("DataParallel::broadcast_parameters");
    // Each parameter is sent as it is now, and received into the array each rank has: one
    // resized since on one rank (rank 0, after loading a checkpoint of its own) had its peers
    // take 8 numbers into a 12-number array, the rest left as it was, without a word, or
    // ended in MPI_ERR_TRUNCATE the other way round (found by an attack). Checked against the
    // layout the ranks agreed on, and agreed on again, so that every rank refuses or none.
    std::string changed;
    for (const Slot& s : slots_) {
        const std::size_t rows = s.parameter->value.shape()[0], cols = s.parameter->value.shape()[1];
        if (rows != s.rows || cols != s.cols) {
            changed = "here " + name_of(*s.parameter) + " is " + std::to_string(rows) + "x" + std::to_string(cols) +
                      ", not the " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " it was";
            break;
        }
    }
    double changes = changed.empty() ? 0 : 1;
    if (comm_.distributed()) comm_.allreduce_sum(&changes, 1);
    if (changes != 0)
        throw autodiff::Error("DataParallel::broadcast_parameters: a parameter changed shape since the DataParallel was made (" +
                              (changed.empty() ? std::string("on another rank") : changed) + " on rank " +
                              std::to_string(comm_.rank()) + " of " + std::to_string(comm_.size()) +
                              "): nothing was sent; give it its shape back, or make a new DataParallel");
    for (const Slot& s : slots_) {
        comm_.broadcast(s.parameter->value.data(), s.parameter->value.size(), 0);
        // Written in place, as by an optimizer's step: a loss recorded before refuses backward()
        // (it read this rank's old values; found by an attack). On every rank, rank 0 too, so
        // that all refuse alike rather than one waiting for the others in a reduction.
        if (comm_.distributed()) s.parameter->bump_version();
    }
}

template <class T>
void DataParallel<T>::attach(autodiff::Tape<T>& tape) {
    tape.set_gradient_ready_hook(&DataParallel::on_ready, this, this->hook_owner());
}

template <class T>
void DataParallel<T>::detach(autodiff::Tape<T>& tape) {
    tape.set_gradient_ready_hook(nullptr, nullptr);
}

template <class T>
void DataParallel<T>::begin_step(std::size_t local, std::size_t global) {
    if (in_step_) throw autodiff::Error("DataParallel::begin_step: the previous step was not finish()ed");
    require_parameters_alive("DataParallel::begin_step");
    if (global == 0 || local > global)
        throw autodiff::Error("DataParallel::begin_step: " + std::to_string(local) + " of " +
                              std::to_string(global) + " examples (need 0 <= local <= global, global >= 1)");
    weight_ = T(double(local) / double(global));
    for (Slot& s : slots_) s.ready = false;
    for (Bucket& b : buckets_) {
        b.waiting = b.slots.size();
        b.started = false;
    }
    next_to_start_ = 0;
    in_step_ = true;
}

template <class T>
void DataParallel<T>::on_ready(void* self, Parameter<T>& p) {
    auto& ddp = *static_cast<DataParallel*>(self);
    if (!ddp.overlap_ || ddp.comm_.size() == 1) return;  // all of it in finish()
    if (!ddp.in_step_)
        throw autodiff::Error("DataParallel: backward() ran outside begin_step() ... finish()");
    const auto found = ddp.slot_of_.find(&p);
    if (found == ddp.slot_of_.end()) return;  // not a parameter this object averages
    ddp.ready(ddp.slots_[found->second]);
}

template <class T>
void DataParallel<T>::ready(Slot& slot) {
    if (slot.ready)
        throw autodiff::Error("DataParallel: the gradient of " + name_of(*slot.parameter) +
                              " was finished twice in one step (one backward() per begin_step()/finish())");
    slot.ready = true;
    Bucket& b = buckets_[slot.bucket];
    const autodiff::Matrix<T>& g = slot.parameter->grad;
    if (g.size() != slot.size)
        throw autodiff::Error("DataParallel: parameter " + name_of(*slot.parameter) + " has " +
                              std::to_string(g.size()) + " gradient entries but had " + std::to_string(slot.size) +
                              " when its bucket was laid out");
    T* out = b.data.data() + slot.offset;
    if (weight_ == T(0))
        std::fill(out, out + g.size(), T(0));  // a rank without examples adds nothing, even if its grad is NaN
    else
        std::transform(g.begin(), g.end(), out, [w = weight_](T x) { return w * x; });
    --b.waiting;
    start_ready_buckets();
}

template <class T>
void DataParallel<T>::start_ready_buckets() {
    // Strictly in index order: every rank must start the same collectives in the same order.
    while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) {
        Bucket& b = buckets_[next_to_start_++];
        b.request = comm_.start_allreduce_sum(b.data.data(), b.data.size());
        b.started = true;
        ++stats_.reductions;
    }
    // MPI moves non-blocking collectives forward only inside MPI calls: nudge the ones in flight.
    for (std::size_t k = 0; k < next_to_start_; ++k) comm_.test(buckets_[k].request);
}

template <class T>
void DataParallel<T>::finish() {
    if (!in_step_) throw autodiff::Error("DataParallel::finish: no begin_step() before it");
    in_step_ = false;
    const auto start = std::chrono::steady_clock::now();
    ++stats_.steps;
    if (comm_.size() == 1) {  // nothing to exchange: only the weight (1 unless the caller splits)
        if (weight_ != T(1))
            for (Slot& s : slots_) s.parameter->grad *= weight_;
        stats_.finish_seconds += seconds_since(start);
        return;
    }
    for (Slot& s : slots_)
        if (!s.ready) ready(s);  // not recorded, not reached by the sweep, or overlap off
    for (Bucket& b : buckets_) {
        const auto wait_start = std::chrono::steady_clock::now();
        comm_.wait(b.request, "a gradient allreduce");
        stats_.wait_seconds += seconds_since(wait_start);
        for (std::size_t k : b.slots) {
            autodiff::Matrix<T>& g = slots_[k].parameter->grad;
            std::copy(b.data.begin() + slots_[k].offset, b.data.begin() + slots_[k].offset + g.size(), g.begin());
        }
    }
    stats_.finish_seconds += seconds_since(start);
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace nn::distributed
