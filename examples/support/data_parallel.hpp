#pragma once
// What an example program needs to train data-parallel under mpirun and behave exactly as
// before without it: one Communicator per process, rank 0 the only one that prints.

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "nn/distributed/data_parallel.hpp"

namespace example {

// The process's communicator; on ranks other than 0, stdout goes to /dev/null so that the
// job prints each line once (stderr stays: any rank's error must be seen).
inline std::unique_ptr<nn::distributed::Communicator> join_ranks(int& argc, char**& argv) {
    auto comm = std::make_unique<nn::distributed::Communicator>(argc, argv);
    if (!comm->is_root() && std::freopen("/dev/null", "w", stdout) == nullptr)
        std::cerr << "rank " << comm->rank() << ": cannot silence stdout\n";
    return comm;
}

// A failure: alone, print it and return 1; under mpirun, end every rank (the others would
// wait for this one in their next reduction).
inline int fail(nn::distributed::Communicator& comm, const std::string& program, const std::string& what) {
    if (comm.distributed()) comm.abort(program + ": " + what);
    std::cerr << program << ": " << what << "\n";
    return 1;
}

}  // namespace example
