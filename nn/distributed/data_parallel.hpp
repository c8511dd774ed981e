#pragma once
/// @file
/// Data-parallel training, as PyTorch's DistributedDataParallel: every rank holds the whole
/// model, computes the gradient of its share of the global batch, and the ranks sum their
/// weighted gradients before each optimizer step, so every rank takes the same step.
///
/// Fast because it overlaps: the parameters are packed into buckets of a few MB in the
/// reverse order of the list (the order the backward sweep finishes them), the tape's
/// gradient-ready hook copies each gradient into its bucket, and a full bucket starts its
/// non-blocking allreduce at once while the sweep goes on. finish() starts what is left,
/// waits, and writes the averaged gradients back into Parameter::grad.
///
///     nn::distributed::Communicator comm(argc, argv);
///     nn::distributed::DataParallel<float> ddp(comm, net.parameters());  // broadcasts rank 0's values
///     ddp.attach(tape);
///     for (each global batch of B examples) {
///         Share s = share_of(B, comm.rank(), comm.size());   // this rank's examples
///         ddp.begin_step(s.count, B);
///         tape.reset(); ...; tape.backward(loss);            // mean loss over the s.count examples
///         ddp.finish();                                      // grads = global-batch mean gradient
///         opt.step(); opt.zero_grad();
///     }

#include <cstddef>
#include <unordered_map>
#include <vector>

#include "autodiff/tape.hpp"
#include "nn/distributed/communicator.hpp"
#include "nn/gradient_sync.hpp"
#include "nn/listed_parameters.hpp"

namespace nn::distributed {

/// Where the time of the reductions went, summed since construction (or reset_stats()).
struct CommStats {
    std::size_t steps = 0;        ///< finish() calls
    std::size_t reductions = 0;   ///< bucket allreduces started
    double wait_seconds = 0;      ///< inside finish(), waiting for allreduces to complete
    double finish_seconds = 0;    ///< all of finish(): starting the rest, waiting, copying back
};

/// The default bucket size: 1 MiB, small enough that the Fashion-MNIST MLP's later layers
/// travel while the first layer's backward runs (docs/distributed.md: choosing it).
constexpr std::size_t default_bucket_bytes = std::size_t(1) << 20;

template <class T>
class DataParallel : public GradientSync<T> {
public:
    /// Packs `parameters` (in forward order: the first layer first) into buckets of about
    /// bucket_bytes, then broadcasts rank 0's values to every rank so that they start equal.
    DataParallel(Communicator& comm, std::vector<autodiff::Parameter<T>*> parameters,
                 std::size_t bucket_bytes = default_bucket_bytes);
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;

    /// Rank 0's parameter values copied to every rank (also after loading a checkpoint on rank 0 only).
    /// Under mpirun, a loss recorded before then refuses backward() on every rank, as after a step.
    void broadcast_parameters();
    /// Reduction starts from this tape's backward sweeps (its gradient-ready hook).
    /// Without attach() (or with overlap off) everything is reduced in finish().
    void attach(autodiff::Tape<T>& tape) override;
    void detach(autodiff::Tape<T>& tape) override;
    /// Off: the hook is ignored and finish() reduces every bucket after the sweep (a blocking
    /// allreduce, for measuring what the overlap gains). On by default.
    void set_overlap(bool on) { overlap_ = on; }

    /// Before the step's backward: this rank computes the mean loss over `local` of the
    /// `global` examples of the batch, so its gradient counts with weight local/global and
    /// the sum over ranks is the global batch's mean gradient, for any split (even local = 0,
    /// when the rank does no backward at all).
    void begin_step(std::size_t local, std::size_t global) override;
    /// After the backward: every parameter's grad becomes the weighted sum over the ranks.
    void finish() override;
    int rank() const override { return comm_.rank(); }
    int ranks() const override { return comm_.size(); }
    void sum(double* values, std::size_t n) override { comm_.allreduce_sum(values, n); }

    const CommStats& stats() const { return stats_; }
    void reset_stats() { stats_ = {}; }
    std::size_t bucket_count() const { return buckets_.size(); }
    Communicator& communicator() { return comm_; }

private:
    struct Slot {  // one parameter's place in a bucket
        autodiff::Parameter<T>* parameter;
        std::size_t bucket, offset, size;  // size: numbers, fixed at construction
        std::size_t rows, cols;            // its shape then, which broadcast_parameters checks
        bool ready = false;
    };
    struct Bucket {
        std::vector<std::size_t> slots;  // indices into slots_
        std::vector<T> data;
        std::size_t waiting = 0;         // slots not yet ready this step
        Request request;
        bool started = false;
    };
    void require_parameters_alive(const char* who) const;  // listed_'s question
    static void on_ready(void* self, autodiff::Parameter<T>& p);
    void ready(Slot& slot);
    void start_ready_buckets();

    Communicator& comm_;
    // Asked whether alive before a step and a broadcast: finish() read one destroyed since in
    // freed memory (found by an attack).
    ListedParameters<T> listed_;
    std::vector<Slot> slots_;
    std::vector<Bucket> buckets_;
    std::unordered_map<const autodiff::Parameter<T>*, std::size_t> slot_of_;
    std::size_t next_to_start_ = 0;  // buckets start in index order on every rank
    T weight_ = T(1);
    bool in_step_ = false, overlap_ = true;
    CommStats stats_;
};

}  // namespace nn::distributed
