#pragma once
// Every example program's main: an error is printed as "program: message" with exit status 1,
// never an uncaught exception (an abort, exit 134).

#include <cstdio>
#include <exception>
#include <functional>

namespace example {

inline int guarded_main(const char* program, const std::function<int()>& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
}

}  // namespace example
