// The communicator of a build without MPI: always one rank of one.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "autodiff/error.hpp"
#include "nn/distributed/communicator.hpp"

namespace nn::distributed {

namespace detail {
double timeout_from_environment(double fallback);
}

Communicator::Communicator(int&, char**&) {
    timeout_seconds_ = detail::timeout_from_environment(timeout_seconds_);
    if (launched_by_mpi())
        throw autodiff::Error(
            "started by an MPI launcher, but tapegrad was built without MPI: every copy would train on its own. "
            "Install libopenmpi-dev and rebuild (cmake finds MPI by itself)");
}

Communicator::~Communicator() = default;

bool Communicator::built_with_mpi() { return false; }

void Communicator::broadcast(float*, std::size_t, int) {}
void Communicator::broadcast(double*, std::size_t, int) {}
void Communicator::allreduce_sum(float*, std::size_t) {}
void Communicator::allreduce_sum(double*, std::size_t) {}
Request Communicator::start_allreduce_sum(float*, std::size_t) { return {}; }
Request Communicator::start_allreduce_sum(double*, std::size_t) { return {}; }
bool Communicator::test(Request&) { return true; }
void Communicator::wait(Request&, const char*) {}
void Communicator::barrier() {}

void Communicator::abort(const std::string& message) {
    std::fprintf(stderr, "tapegrad: %s\n", message.c_str());
    std::exit(1);
}

}  // namespace nn::distributed
