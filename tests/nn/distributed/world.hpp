#pragma once
// The one Communicator of the test program, made on first use (Catch2 owns main()).

#include "nn/distributed/communicator.hpp"

namespace test_support {

inline nn::distributed::Communicator& world() {
    static int argc = 0;
    static char** argv = nullptr;
    static nn::distributed::Communicator comm(argc, argv);
    return comm;
}

}  // namespace test_support
