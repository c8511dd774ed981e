#include "nn/allocate.hpp"

#if defined(__linux__)
#include <sys/sysinfo.h>
#elif defined(__unix__)
#include <unistd.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace nn {

namespace {
// Bytes of memory, swap included (a model that fits only with it is the user's call), or
// SIZE_MAX where the system does not say.
std::size_t memory_with_swap() {
#if defined(__linux__)
    struct sysinfo info {};
    std::size_t bytes = 0;
    if (sysinfo(&info) == 0 &&
        autodiff::multiply_fits(std::size_t(info.totalram) + std::size_t(info.totalswap), std::size_t(info.mem_unit), bytes))
        return bytes;
#elif defined(__unix__) && defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    std::size_t bytes = 0;
    if (pages > 0 && page > 0 && autodiff::multiply_fits(std::size_t(pages), std::size_t(page), bytes)) return bytes;
#endif
    return SIZE_MAX;
}
}  // namespace

void require_fits_in_memory(const std::string& what, std::size_t count, std::size_t bytes_each) {
    std::size_t bytes = 0;
    if (!autodiff::multiply_fits(count, bytes_each, bytes))
        throw autodiff::Error(what + " has more bytes than a size_t can count (" + std::to_string(count) + " x at least " +
                              std::to_string(bytes_each) + ")");
    const std::size_t memory = memory_with_swap();
    if (bytes > memory)
        throw autodiff::Error(what + " needs at least " + std::to_string(bytes) + " bytes (" + std::to_string(count) +
                              " x " + std::to_string(bytes_each) + "), more than this machine's " + std::to_string(memory) +
                              " bytes of memory (swap included)");
}

std::size_t allocated_bytes() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;  // in use from the arenas, and mapped blocks
#else
    return 0;
#endif
}

}  // namespace nn
