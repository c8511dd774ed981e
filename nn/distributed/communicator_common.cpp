// What the communicator does the same with MPI and without: the launcher's fingerprints,
// the timeout.
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "autodiff/error.hpp"
#include "nn/distributed/communicator.hpp"

namespace nn::distributed {

bool Communicator::launched_by_mpi() {
    // OpenMPI's mpirun, then the PMI variables of MPICH's Hydra and of Slurm's srun.
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(name) != nullptr) return true;
    return false;
}

void Communicator::set_timeout_seconds(double seconds) {
    if (!(std::isfinite(seconds) && seconds > 0))
        throw autodiff::Error("Communicator: the timeout must be a positive number of seconds, got " +
                              std::to_string(seconds));
    timeout_seconds_ = seconds;
}

namespace detail {

// TAPEGRAD_MPI_TIMEOUT if set and valid, else the default; a bad value is reported, not ignored.
double timeout_from_environment(double fallback) {
    const char* text = std::getenv("TAPEGRAD_MPI_TIMEOUT");
    if (text == nullptr) return fallback;
    char* end = nullptr;
    const double seconds = std::strtod(text, &end);
    if (end == text || *end != '\0' || !std::isfinite(seconds) || seconds <= 0)
        throw autodiff::Error(std::string("TAPEGRAD_MPI_TIMEOUT must be a positive number of seconds, got '") +
                              text + "'");
    return seconds;
}

}  // namespace detail

}  // namespace nn::distributed
