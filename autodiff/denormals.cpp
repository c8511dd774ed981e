#include "autodiff/denormals.hpp"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace autodiff {

#if defined(__SSE2__)
namespace {
constexpr unsigned flush_to_zero = 0x8000;      // FTZ: subnormal results become 0
constexpr unsigned denormals_are_zero = 0x0040;  // DAZ: subnormal inputs read as 0
constexpr unsigned both = flush_to_zero | denormals_are_zero;
}  // namespace

bool set_flush_denormals(bool on) {
    _mm_setcsr(on ? (_mm_getcsr() | both) : (_mm_getcsr() & ~both));
    return true;
}

bool flush_denormals() { return (_mm_getcsr() & both) == both; }
#else
bool set_flush_denormals(bool) { return false; }
bool flush_denormals() { return false; }
#endif

}  // namespace autodiff
