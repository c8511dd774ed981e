// The communicator over MPI (MPI_COMM_WORLD). Every wait is a test loop with a deadline,
// so a peer that vanished or hung turns into a clear error instead of a hang.
#include <mpi.h>
#include <sched.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "autodiff/error.hpp"
#include "nn/distributed/communicator.hpp"

namespace nn::distributed {

namespace detail {
double timeout_from_environment(double fallback);
}

namespace {

static_assert(sizeof(MPI_Request) <= sizeof(std::uint64_t), "Request must be able to hold an MPI_Request");

int world_rank = 0, world_size = 1;  // for the terminate handler, which gets no arguments

[[noreturn]] void abort_job(const std::string& message) {
    std::fprintf(stderr, "tapegrad: rank %d of %d: %s; aborting every rank\n", world_rank, world_size,
                 message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest if it ever did
}

// An exception nobody caught: name it, then end the job (the default would end this rank
// alone and leave the others blocked in their next collective until mpirun notices).
[[noreturn]] void terminate_job() {
    std::string what = "terminated";
    if (std::exception_ptr current = std::current_exception()) {
        try {
            std::rethrow_exception(current);
        } catch (const std::exception& e) {
            what = std::string("uncaught exception: ") + e.what();
        } catch (...) {
            what = "uncaught exception of unknown type";
        }
    }
    abort_job(what);
}

Request to_request(MPI_Request r) {
    Request out;
    std::memcpy(&out.handle, &r, sizeof r);
    out.active = true;
    return out;
}

MPI_Request from_request(const Request& r) {
    MPI_Request out;
    std::memcpy(&out, &r.handle, sizeof out);
    return out;
}

int count_of(std::size_t n, const char* what) {
    if (n > std::size_t(INT_MAX))
        throw autodiff::Error(std::string(what) + ": " + std::to_string(n) + " numbers in one message (MPI takes at most " +
                              std::to_string(INT_MAX) + ")");
    return static_cast<int>(n);
}

template <class T>
MPI_Datatype type_of();
template <>
MPI_Datatype type_of<float>() { return MPI_FLOAT; }
template <>
MPI_Datatype type_of<double>() { return MPI_DOUBLE; }

template <class T>
Request start_broadcast(T* data, std::size_t n, int root) {
    MPI_Request r;
    MPI_Ibcast(data, count_of(n, "broadcast"), type_of<T>(), root, MPI_COMM_WORLD, &r);
    return to_request(r);
}

template <class T>
Request start_sum(T* data, std::size_t n) {
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, data, count_of(n, "allreduce"), type_of<T>(), MPI_SUM, MPI_COMM_WORLD, &r);
    return to_request(r);
}

}  // namespace

Communicator::Communicator(int& argc, char**& argv) {
    timeout_seconds_ = detail::timeout_from_environment(timeout_seconds_);
    if (!launched_by_mpi()) return;  // one rank of one; MPI untouched, as without MPI
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int provided = 0;
        // Only the thread that trains calls MPI (BLAS threads never do).
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        initialised_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    world_rank = rank_;
    world_size = size_;
    std::set_terminate(terminate_job);
}

Communicator::~Communicator() {
    if (!initialised_) return;
    if (std::uncaught_exceptions() > 0) abort_job("an exception is leaving the program");
    MPI_Finalize();
}

bool Communicator::built_with_mpi() { return true; }

void Communicator::abort(const std::string& message) {
    if (size_ > 1 || initialised_) abort_job(message);
    std::fprintf(stderr, "tapegrad: %s\n", message.c_str());
    std::exit(1);
}

bool Communicator::test(Request& request) {
    if (!request.active) return true;
    MPI_Request r = from_request(request);
    int done = 0;
    MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    if (done) request.active = false;
    return done != 0;
}

void Communicator::wait(Request& request, const char* what) {
    if (!request.active) return;
    const auto start = std::chrono::steady_clock::now();
    while (!test(request)) {
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        // Spin briefly (a reduction on a quiet machine completes in microseconds), then give
        // the core back: ranks are often oversubscribed, and the rank we wait for may need
        // this very core to get here.
        if (waited > 100e-6) sched_yield();
        if (waited > timeout_seconds_)
            abort_job("waited " + std::to_string(int(waited)) + " s for " + what +
                      " (another rank died, hangs, or runs a different program; TAPEGRAD_MPI_TIMEOUT sets the limit)");
    }
}

void Communicator::broadcast(float* data, std::size_t n, int root) {
    if (size_ == 1) return;
    Request r = start_broadcast(data, n, root);
    wait(r, "a broadcast");
}

void Communicator::broadcast(double* data, std::size_t n, int root) {
    if (size_ == 1) return;
    Request r = start_broadcast(data, n, root);
    wait(r, "a broadcast");
}

void Communicator::allreduce_sum(float* data, std::size_t n) {
    Request r = start_allreduce_sum(data, n);
    wait(r, "an allreduce");
}

void Communicator::allreduce_sum(double* data, std::size_t n) {
    Request r = start_allreduce_sum(data, n);
    wait(r, "an allreduce");
}

Request Communicator::start_allreduce_sum(float* data, std::size_t n) {
    return size_ == 1 ? Request{} : start_sum(data, n);
}

Request Communicator::start_allreduce_sum(double* data, std::size_t n) {
    return size_ == 1 ? Request{} : start_sum(data, n);
}

void Communicator::barrier() {
    if (size_ == 1) return;
    MPI_Request r;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    Request request = to_request(r);
    wait(request, "a barrier");
}

}  // namespace nn::distributed
