#pragma once
// exp (and the log softplus needs with it) for the kernels that compute it over many elements:
// branch-free, so that a loop of it vectorises (std::exp is a call per element). The softmax's
// exp (kernels::exp_nonpositive) and the sigmoid's (ops/activation_rules.hpp) are this one
// function, so a value is the same bits whichever computes it. Internal to the engine's .cpp files.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace autodiff::kernels {

// a * b + c, rounded once where the target has FMA (a -march=native build), else twice.
// Explicit, not left to contraction (which -ffp-contract=off forbids): a kernel gives the same
// bits wherever it is called from, so a replay still equals its recording bit for bit.
template <class T>
inline T mul_add(T a, T b, T c) {
#ifdef __FMA__
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}

// exp(r) for |r| <= ln(2)/2 by its Taylor series: degree 13 leaves a truncation error below
// 1e-17 in double, degree 7 below 1e-8 in float. Evaluated by Estrin's scheme (pairs of
// terms, then pairs of pairs by r^2, r^4, r^8), not Horner's: the loop over elements is
// bound by the latency of one element's chain of dependent operations, which Horner makes
// 26 long in double (a mul and an add per degree without FMA) and Estrin 8.
// 4000 doubles: 9.1 -> 5.7 us with -march=native, 18.1 -> 11.5 us without (AMD EPYC).
// The leading 1 + r is added last, to the sum of the smaller terms, so that their rounding
// errors stay below the result's last bit: 1 ulp at most from std::exp, as Horner's was
// (0.099 ulp on average over a million points, against Horner's 0.102; in the same order
// 1 + r first was 0.41 and up to 2 ulp).
// With FMA (mul_add) 5.8 -> 4.9 us, the same accuracy.
// exp(r) - 1 is the same sum without its leading 1: r + (the smaller terms), accurate relative
// to its own size, where 1 + r would have lost the digits of a small r (tanh's expm1).
inline double expm1_reduced(double r) {
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const double t2 = mul_add(r, 1.0 / 6, 1.0 / 2), t4 = mul_add(r, 1.0 / 120, 1.0 / 24);
    const double t6 = mul_add(r, 1.0 / 5040, 1.0 / 720), t8 = mul_add(r, 1.0 / 362880, 1.0 / 40320);
    const double t10 = mul_add(r, 1.0 / 39916800, 1.0 / 3628800), t12 = mul_add(r, 1.0 / 6227020800, 1.0 / 479001600);
    const double from2 = mul_add(r8, mul_add(r4, t12, mul_add(r2, t10, t8)), mul_add(r4, mul_add(r2, t6, t4), r2 * t2));
    return r + from2;
}
inline float expm1_reduced(float r) {
    const float r2 = r * r, r4 = r2 * r2;
    const float t2 = mul_add(r, 1.0f / 6, 1.0f / 2), t4 = mul_add(r, 1.0f / 120, 1.0f / 24);
    const float t6 = mul_add(r, 1.0f / 5040, 1.0f / 720);
    return r + mul_add(r4, mul_add(r2, t6, t4), r2 * t2);
}
template <class T>
inline T exp_reduced(T r) {
    return 1 + expm1_reduced(r);
}

template <class T> struct ExpConstants;
template <> struct ExpConstants<double> {
    using Bits = std::int64_t;
    // The smallest x whose exp is a normal double: -1022 ln 2 = -708.39641853226410622...
    // rounded toward 0, so exp(lowest) >= 2^-1022 and x / ln 2 still rounds to -1022 (a normal
    // 2^q). (-708.39 left x in (-708.3964, -708.39) at 0 where exp is a normal 2.23e-308.)
    static constexpr double lowest = -0x1.6232bdd7abcd2p+9;
    // The largest x whose exp is finite: ln(DBL_MAX) = 709.78271289338399673... rounded down.
    static constexpr double highest = 0x1.62e42fefa39efp+9;
    static constexpr double ln2_hi = 0.693147180369123816490, ln2_lo = 1.90821492927058770002e-10;
    static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
    static constexpr Bits shifter_bits = 0x4338000000000000;
    static constexpr int mantissa = 52, bias = 1023;
};
template <> struct ExpConstants<float> {
    using Bits = std::int32_t;
    // -126 ln 2 = -87.336544750553108... rounded toward 0 (-87.33f left x in (-87.3365, -87.33)
    // at 0 where exp is a normal 1.18e-38).
    static constexpr float lowest = -0x1.5d589ep+6f;
    static constexpr float highest = 0x1.62e42ep+6f;  // ln(FLT_MAX) = 88.7228391116729996... rounded down
    static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
    static constexpr Bits shifter_bits = 0x4B400000;
    static constexpr int mantissa = 23, bias = 127;
};

// x = q ln 2 + r with |r| <= ln(2)/2 (r in two parts, exactly) and 2^q, for x <= 0 (and NaN,
// which stays NaN), clamped to ExpConstants::lowest. Adding 1.5 * 2^mantissa rounds x / ln 2 to
// an integer that then sits in the low bits: no float-to-int conversion, which would not
// vectorise.
template <class T>
struct ExpReduction {
    T r, scale;
};
// The scale is 2^(q - less): exp_one takes 2^(q - 1) for the largest x, whose q = 1024 (128 in
// float) has no power of two of its own.
template <class T>
inline ExpReduction<T> reduce_for_exp(T x, int less = 0) {
    using C = ExpConstants<T>;
    using Bits = typename C::Bits;
    const T inv_ln2 = T(1.44269504088896340736);
    const T v = x < C::lowest ? C::lowest : x;
    const T shifted = v * inv_ln2 + C::shifter;
    const T q = shifted - C::shifter;
    const T r = (v - q * C::ln2_hi) - q * C::ln2_lo;
    Bits q_bits;
    std::memcpy(&q_bits, &shifted, sizeof q_bits);
    // Shifted as unsigned: for a NaN input the exponent is garbage (the result is NaN
    // anyway) and a signed shift of it would be undefined behaviour.
    using UBits = std::make_unsigned_t<Bits>;
    const Bits scale_bits = static_cast<Bits>(static_cast<UBits>(q_bits - C::shifter_bits + C::bias - less) << C::mantissa);
    T scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    return {r, scale};
}

// exp(x) for x <= 0 (and NaN, which stays NaN): within 1 ulp of std::exp; 0 below
// ExpConstants::lowest (-1022 ln 2 in double, -126 ln 2 in float), where it would be subnormal.
template <class T>
inline T exp_nonpositive_one(T x) {
    const ExpReduction<T> e = reduce_for_exp(x);
    return x < ExpConstants<T>::lowest ? T(0) : exp_reduced(e.r) * e.scale;
}

// exp(x) for any x: exp_nonpositive_one for x <= 0 (and NaN); above, exp(r) 2^(q - 1) 2, the
// doubling exact, so that x up to ExpConstants::highest stays finite; inf past it.
template <class T>
inline T exp_one(T x) {
    using C = ExpConstants<T>;
    const T positive = x > T(0) ? (x > C::highest ? C::highest : x) : T(0);
    const ExpReduction<T> e = reduce_for_exp(positive, 1);
    const T above = exp_reduced(e.r) * e.scale * T(2);
    const T below = exp_nonpositive_one(x > T(0) ? T(0) : x);
    return x > C::highest ? T(INFINITY) : (x > T(0) ? above : below);
}

// exp(x) - 1 for x <= 0 (and NaN), accurate relative to its result for small x too:
// 2^q (exp(r) - 1) + (2^q - 1), where 2^q - 1 is exact. -1 below ExpConstants::lowest, and
// x itself at +-0: the sum would give +0 for -0, where std::expm1(-0) is -0 (elu(-0) too).
template <class T>
inline T expm1_nonpositive_one(T x) {
    const ExpReduction<T> e = reduce_for_exp(x);
    const T sum = x < ExpConstants<T>::lowest ? T(-1) : mul_add(e.scale, expm1_reduced(e.r), e.scale - T(1));
    return x == T(0) ? x : sum;
}

// tanh(x) = -u / (2 + u) with u = expm1(-2|x|), the sign of x put back (-0 stays -0, NaN NaN).
template <class T>
inline T tanh_one(T x) {
    const T u = expm1_nonpositive_one(T(-2) * std::abs(x));
    return std::copysign(-u / (T(2) + u), x);
}

// log(x) for a positive normal double, by fdlibm's method (e_log.c): x = 2^e m with m in
// [sqrt(2)/2, sqrt(2)), f = m - 1, s = f / (2 + f), log(m) = f - f^2/2 + s (f^2/2 + R(s^2))
// with R its minimax polynomial, and e ln 2 added in two parts. Under 1 ulp. Branch-free and
// without 64-bit integer shifts or conversions that AVX2 lacks (arithmetic shifts, int64 to
// double), so that a loop of it vectorises: 1000 logs 5.3 -> 2.4 us with -march=native,
// 5.7 -> 4.4 us without (AMD EPYC), against glibc's std::log.
// log(x 2^-less) for the caller of a scaled x (log_one's subnormals): `less` comes off the
// exponent, an integer, so that the two-part ln 2 multiplies it exactly.
inline double log_normal(double x, double less = 0.0) {
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    // Taking the bits of sqrt(2)/2 off moves the exponent's step to m = sqrt(2); biased by
    // 1023 so that the difference stays nonnegative: its top bits are e + 1023.
    const std::uint64_t e_biased = (bits - 0x3fe6a09e667f3bcdULL + (0x3ffULL << 52)) >> 52;
    const std::uint64_t m_bits = bits - ((e_biased - 0x3ff) << 52);
    double m;
    std::memcpy(&m, &m_bits, sizeof m);
    // e as a double: 2^52 + e_biased has e_biased in its low mantissa bits.
    const std::uint64_t e_bits = e_biased | 0x4330000000000000ULL;
    double e;
    std::memcpy(&e, &e_bits, sizeof e);
    e -= 4503599627370496.0 + 1023.0;
    e -= less;
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double half_f2 = 0.5 * f * f;
    const double z = s * s, w = z * z;
    const double odd = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    const double even = z * (6.666666666666735130e-01 +
                             w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    const double r = even + odd;
    return e * ExpConstants<double>::ln2_hi - ((half_f2 - (s * (half_f2 + r) + e * ExpConstants<double>::ln2_lo)) - f);
}

// log(x) for any x, as std::log: log_normal where x is a positive normal double (a float is one
// in double), a subnormal scaled by 2^54 first; -inf at +-0, inf at inf, NaN below 0 and for NaN.
// Branch-free (log_normal is given 1 where its answer is not wanted), so a loop of it vectorises.
template <class T>
inline T log_one(T x) {
    constexpr double smallest_normal = std::numeric_limits<double>::min(), largest = std::numeric_limits<double>::max();
    const double v = static_cast<double>(x);
    // Scaled wherever v < smallest_normal, 0 and below included: log_normal is given 1 there
    // anyway. A bool `v > 0 && v < smallest_normal` read by both selects kept GCC 12 from
    // vectorising the loop at all ("no vectype"): the softmax's 1000 logs of an M step ran
    // scalar, the most of its softmax_columns' time (bench/README.md, "Twenty-first session").
    // tests/autodiff/compiled_code.sh asks the compiled library whether the loop still vectorises.
    const double scaled = v < smallest_normal ? v * 0x1p54 : v;
    const double less = v < smallest_normal ? 54.0 : 0.0;
    const bool finite_positive = (v > 0) & (v <= largest);
    const double l = log_normal(finite_positive ? scaled : 1.0, less);
    const double special = v == 0 ? -HUGE_VAL : (v > 0 ? v : std::numeric_limits<double>::quiet_NaN());
    return static_cast<T>(finite_positive ? l : special);
}

// log(1 + e^x) for x <= 0 (softplus's and the logistic loss's log1p(e^-|z|)): with
// u = 1 + e^x rounded, log(u) + (e^x - (u - 1)) / u adds back what the rounding took (fdlibm's
// log1p correction; Goldberg's log(u) e^x / (u - 1) rounds twice and was 2.6 ulp off at
// x = -29.83), and e^x itself where u rounds to 1. In double for float too (then rounded
// once). NaN stays NaN.
template <class T>
inline T log1p_exp_nonpositive_one(T x) {
    const double e = exp_nonpositive_one(static_cast<double>(x));
    const double u = 1.0 + e;
    return static_cast<T>(u == 1.0 ? e : log_normal(u) + (e - (u - 1.0)) / u);
}

}  // namespace autodiff::kernels
