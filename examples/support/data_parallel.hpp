#pragma once
// What an example program needs to train data-parallel under mpirun and behave exactly as
// before without it: one Communicator per process, rank 0 the only one that prints.

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "nn/distributed/data_parallel.hpp"
#include "guarded_main.hpp"

namespace example {

// The process's communicator; on ranks other than 0, stdout goes to /dev/null so that the
// job prints each line once (stderr stays: any rank's error must be seen).
inline std::unique_ptr<nn::distributed::Communicator> join_ranks(int& argc, char**& argv) {
    auto comm = std::make_unique<nn::distributed::Communicator>(argc, argv);
    if (!comm->is_root() && std::freopen("/dev/null", "w", stdout) == nullptr)
        std::cerr << "rank " << comm->rank() << ": cannot silence stdout\n";
    return comm;
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
