#pragma once
/// @file
/// The processes of a data-parallel run and the few collectives it needs, over MPI.
///
/// A program constructs one Communicator at the start of main(). Launched by mpirun (or
/// another MPI launcher) it initialises MPI and speaks for every rank of MPI_COMM_WORLD;
/// started on its own it does not touch MPI at all and is one rank of one, so the same
/// program runs unchanged with or without mpirun. Built without MPI, it is always one rank
/// of one, and refuses to run under a launcher rather than let N copies train apart.
///
/// Faults never hang: an exception that escapes main() (std::terminate), abort(), and a wait
/// that outlives the timeout all end the whole job with MPI_Abort, after one line on stderr
/// naming the rank and the cause. A rank killed outright is noticed by mpirun, which ends the
/// others; the timeout is the backstop when that cannot happen.

#include <cstddef>
#include <cstdint>
#include <string>

namespace nn::distributed {

/// A non-blocking collective in flight (an MPI_Request, kept opaque so that this header
/// needs no mpi.h).
struct Request {
    std::uint64_t handle = 0;
    bool active = false;
};

class Communicator {
public:
    /// Initialises MPI when launched by mpirun and tapegrad was built with MPI; throws
    /// autodiff::Error under a launcher when built without MPI. One per process.
    Communicator(int& argc, char**& argv);
    /// MPI_Finalize after a normal exit; MPI_Abort of the whole job while an exception is
    /// unwinding (a rank that fails must not leave the others waiting for it).
    ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    /// True when there is more than one rank.
    bool distributed() const { return size_ > 1; }

    /// data[0..n) of rank `root` copied to every rank.
    void broadcast(float* data, std::size_t n, int root = 0);
    void broadcast(double* data, std::size_t n, int root = 0);  ///< as broadcast(float*, ...)
    /// data[0..n) replaced on every rank by its sum over the ranks (blocking, with the timeout).
    void allreduce_sum(float* data, std::size_t n);
    void allreduce_sum(double* data, std::size_t n);  ///< as allreduce_sum(float*, ...)
    /// Starts summing data[0..n) over the ranks in place; data must stay untouched until
    /// wait(). Every rank must start the same collectives in the same order.
    Request start_allreduce_sum(float* data, std::size_t n);
    Request start_allreduce_sum(double* data, std::size_t n);  ///< as start_allreduce_sum(float*, ...)
    /// Lets MPI progress the request (MPI moves non-blocking collectives only inside MPI calls);
    /// true once it has completed.
    bool test(Request& request);
    /// Blocks until the request completes; past timeout_seconds() aborts the job, naming `what`.
    void wait(Request& request, const char* what);
    /// Blocks until every rank has arrived (with the timeout).
    void barrier();

    /// How long a wait may last before the job is declared hung (default 300 s, or the
    /// environment variable TAPEGRAD_MPI_TIMEOUT in seconds).
    double timeout_seconds() const { return timeout_seconds_; }
    void set_timeout_seconds(double seconds);

    /// Prints "tapegrad: rank R of N: message" on stderr and ends every rank (exit code 1).
    /// One rank of one: prints and calls std::exit(1).
    [[noreturn]] void abort(const std::string& message);

    /// Was tapegrad built with MPI?
    static bool built_with_mpi();
    /// Does the environment say an MPI launcher started this process (OMPI_COMM_WORLD_SIZE,
    /// PMI_SIZE, PMIX_RANK)?
    static bool launched_by_mpi();

private:
    int rank_ = 0, size_ = 1;
    bool initialised_ = false;  ///< this object called MPI_Init_thread
    double timeout_seconds_ = 300;
};

}  // namespace nn::distributed
