#pragma once
// Before a loop whose iterations never read what earlier ones wrote, so that GCC vectorises
// it without a run-time overlap check. GCC only: clang's nearest, loop vectorize(assume_safety),
// also lets it reorder a loop's floating-point sums (found by an attack: lane_sum's eight
// lanes then summed 1e16, 1, -1e16 to 1 instead of 0), and lane_sum's order is its contract.
#if defined(__GNUC__) && !defined(__clang__)
#define TAPEGRAD_LOOP_WITHOUT_OVERLAP _Pragma("GCC ivdep")
#else
#define TAPEGRAD_LOOP_WITHOUT_OVERLAP
#endif
