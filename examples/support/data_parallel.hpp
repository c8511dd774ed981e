#pragma once
// What an example program needs to train data-parallel under mpirun and behave exactly as
// before without it: one Communicator per process, rank 0 the only one that prints.

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "nn/distributed/data_parallel.hpp"
#include "nn/training.hpp"
#include "guarded_main.hpp"

namespace example {

// The process's communicator; on ranks other than 0, stdout goes to /dev/null so that the
// job prints each line once (stderr stays: any rank's error must be seen). nullptr, with the
// reason printed, if MPI cannot start.
inline std::unique_ptr<nn::distributed::Communicator> join_ranks(const char* program, int& argc, char**& argv) {
    std::unique_ptr<nn::distributed::Communicator> comm;
    try {
        comm = std::make_unique<nn::distributed::Communicator>(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return nullptr;
    }
    if (!comm->is_root() && std::freopen("/dev/null", "w", stdout) == nullptr)
        std::cerr << "rank " << comm->rank() << ": cannot silence stdout\n";
    return comm;
}

// Under mpirun, the DataParallel that averages the trainer's gradients over the ranks
// (constructed once the parameters hold their starting values: it broadcasts rank 0's);
// alone, nullptr and the trainer as it was.
template <class T>
std::unique_ptr<nn::distributed::DataParallel<T>> data_parallel_for(nn::distributed::Communicator& comm,
                                                                    nn::Trainer<T>& trainer,
                                                                    std::vector<autodiff::Parameter<T>*> parameters) {
    if (!comm.distributed()) return nullptr;
    auto data_parallel = std::make_unique<nn::distributed::DataParallel<T>>(comm, std::move(parameters));
    trainer.set_gradient_sync(data_parallel.get());
    return data_parallel;
}

// What the programs' first line says of the ranks ("" alone).
inline std::string ranks_note(const nn::distributed::Communicator& comm) {
    return comm.distributed() ? ", data-parallel on " + std::to_string(comm.size()) + " processes" : "";
}

// guarded_main for a program that may run under mpirun: alone, an error is printed with
// exit status 1 as before; under mpirun it ends every rank (the others would otherwise
// wait for this one in their next reduction).
inline int guarded_ranks_main(const char* program, nn::distributed::Communicator& comm,
                              const std::function<int()>& body) {
    return guarded_main(program, [&] {
        try {
            return body();
        } catch (const std::exception& e) {
            if (comm.distributed()) comm.abort(std::string(program) + ": " + e.what());
            throw;
        }
    });
}

}  // namespace example
