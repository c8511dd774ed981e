#include "nn/notebook/numpy_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace nn {
namespace {

// NumPy's default print options (np.get_printoptions()).
constexpr int kPrecision = 8;
constexpr int kLineWidth = 75;
constexpr std::size_t kThreshold = 1000;
constexpr std::size_t kEdgeItems = 3;

// A finite double as decimal digits: |x| = d0.d1d2... * 10^exp. `digits` has no leading or
// trailing zeros, except that zero itself is "0" with exp 0.
struct Decimal {
    std::string digits;
    int exp = 0;
};

// Reads the digits of a printf/to_chars rendering ("-12.340", "1.5e-07", "3e+20") into a
// Decimal. Only the digits and the point position are taken; the sign is the caller's.
Decimal parse_decimal(const char* first, const char* last) {
    std::string mant;
    int point = -1;  // digits before the '.', once seen
    const char* p = first;
    if (p != last && (*p == '-' || *p == '+')) ++p;
    for (; p != last && *p != 'e' && *p != 'E'; ++p) {
        if (*p >= '0' && *p <= '9')
            mant += *p;
        else  // the point: '.', or whatever a non-"C" LC_NUMERIC makes printf use
            point = static_cast<int>(mant.size());
    }
    if (point < 0) point = static_cast<int>(mant.size());
    int e10 = 0;
    if (p != last) {  // "e+07" / "e-07"; the text need not be NUL-terminated
        ++p;
        const bool neg = p != last && *p == '-';
        if (p != last && (*p == '-' || *p == '+')) ++p;
        std::from_chars(p, last, e10);
        if (neg) e10 = -e10;
    }

    const auto lead = mant.find_first_not_of('0');
    if (lead == std::string::npos) return Decimal{"0", 0};
    mant.erase(0, lead);
    point -= static_cast<int>(lead);
    mant.erase(mant.find_last_not_of('0') + 1);
    return Decimal{mant, point + e10 - 1};
}

// The shortest digits that read back as x (what Dragon4 with unique=True produces before
// any precision cutoff).
Decimal shortest(double x) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
    return parse_decimal(buf, r.ptr);
}

// x rounded exactly (ties to even, on the exact binary value) by printf, as Dragon4 rounds
// when the precision cuts the unique digits short. `conv` is 'f' or 'e'.
Decimal rounded(double x, int precision, char conv) {
    char buf[512];  // %.8f of the largest double needs about 320
    const char fmt[] = {'%', '.', '*', conv, '\0'};
    const int n = std::snprintf(buf, sizeof buf, fmt, precision, x);
    return parse_decimal(buf, buf + n);
}

std::string right_justify(const std::string& s, int width) {
    const int pad = width - static_cast<int>(s.size());
    return pad > 0 ? std::string(static_cast<std::size_t>(pad), ' ') + s : s;
}

std::string left_justify(const std::string& s, int width) {
    const int pad = width - static_cast<int>(s.size());
    return pad > 0 ? s + std::string(static_cast<std::size_t>(pad), ' ') : s;
}

// np.format_float_positional(x, precision, unique=True, fractional=True, trim='.',
// pad_left, pad_right): unique digits, at most `precision` after the point, trailing zeros
// dropped but the point kept ("1.", "0.5"), then the integer part (with sign) right-justified
// to pad_left and the fraction left-justified to pad_right.
std::string format_positional(double x, int precision, int pad_left, int pad_right) {
    Decimal d = shortest(x);
    const int frac_digits = std::max(0, static_cast<int>(d.digits.size()) - 1 - d.exp);
    if (frac_digits > precision) d = rounded(x, precision, 'f');

    std::string int_part, frac_part;
    if (d.exp >= 0) {
        const auto n_int = static_cast<std::size_t>(d.exp) + 1;
        int_part = d.digits.substr(0, n_int);
        int_part.resize(n_int, '0');  // 1e7 has more integer places than digits
        if (d.digits.size() > n_int) frac_part = d.digits.substr(n_int);
    } else {
        int_part = "0";
        frac_part = std::string(static_cast<std::size_t>(-d.exp - 1), '0') + d.digits;
    }
    if (std::signbit(x)) int_part.insert(0, "-");  // also "-0." for negative zero
    return right_justify(int_part, pad_left) + "." + left_justify(frac_part, pad_right);
}

// np.format_float_scientific(x, precision, unique=True, trim='k', pad_left, exp_digits,
// min_digits): unique digits, at most `precision` after the point, zero-filled to
// min_digits; the exponent has a sign and at least two (or exp_digits) digits.
// Dragon4 fills to min_digits with further exact digits, not zeros; for doubles that is the
// same here: at most 9 significant digits are printed, and x differs from its shortest form
// by far less than half a unit in the 9th digit.
std::string format_scientific(double x, int precision, int min_digits, int pad_left,
                              int exp_digits) {
    Decimal d = shortest(x);
    if (static_cast<int>(d.digits.size()) - 1 > precision) d = rounded(x, precision, 'e');

    std::string int_part = d.digits.substr(0, 1);
    if (std::signbit(x)) int_part.insert(0, "-");
    std::string frac_part = d.digits.substr(1);
    if (static_cast<int>(frac_part.size()) < min_digits)
        frac_part.resize(static_cast<std::size_t>(min_digits), '0');
    std::string exp_part = std::to_string(std::abs(d.exp));
    const auto exp_width = static_cast<std::size_t>(std::max(2, exp_digits));
    if (exp_part.size() < exp_width) exp_part.insert(0, exp_width - exp_part.size(), '0');
    return right_justify(int_part, pad_left) + "." + frac_part + "e" + (d.exp < 0 ? "-" : "+") +
           exp_part;
}

// FloatingFormat with floatmode 'maxprec', suppress False, sign '-': one notation and one
// set of paddings for every printed value, so that columns line up.
class FloatFormat {
public:
    explicit FloatFormat(const std::vector<double>& data) {
        std::vector<double> finite;
        for (double x : data)
            if (std::isfinite(x)) finite.push_back(x);

        // Scientific notation if positional would lose small values or grow too wide.
        double max_abs = 0.0, min_abs = HUGE_VAL;
        for (double x : finite) {
            if (x == 0.0) continue;
            max_abs = std::max(max_abs, std::fabs(x));
            min_abs = std::min(min_abs, std::fabs(x));
        }
        if (max_abs > 0.0)  // some non-zero finite value exists
            exp_format_ = max_abs >= 1e8 || min_abs < 1e-4 || max_abs / min_abs > 1e3;

        // First pass: print every value unpadded, measure the parts.
        if (finite.empty()) {
            // Nothing to measure: only nan/inf will be printed.
        } else if (exp_format_) {
            int exp_len = 0;
            precision_ = 0;
            for (double x : finite) {
                const std::string s = format_scientific(x, kPrecision, 0, 0, -1);
                const auto dot = s.find('.'), e = s.find('e');
                pad_left_ = std::max(pad_left_, static_cast<int>(dot));
                precision_ = std::max(precision_, static_cast<int>(e - dot - 1));
                exp_len = std::max(exp_len, static_cast<int>(s.size() - e - 1));
            }
            exp_size_ = exp_len - 1;  // the exponent's sign is not a digit
            min_digits_ = precision_;
            pad_right_ = exp_size_ + 2 + precision_;  // only used to width nan/inf
        } else {
            for (double x : finite) {
                const std::string s = format_positional(x, kPrecision, 0, 0);
                const auto dot = s.find('.');
                pad_left_ = std::max(pad_left_, static_cast<int>(dot));
                pad_right_ = std::max(pad_right_, static_cast<int>(s.size() - dot - 1));
            }
        }

        // nan and inf are right-aligned in the same width, which they may widen.
        if (finite.size() != data.size()) {
            const bool neg_inf = std::any_of(data.begin(), data.end(),
                                             [](double x) { return std::isinf(x) && x < 0; });
            const int offset = pad_right_ + 1;  // +1 for the point
            pad_left_ = std::max({pad_left_, 3 - offset, 3 + (neg_inf ? 1 : 0) - offset});
        }
    }

    std::string operator()(double x) const {
        if (!std::isfinite(x)) {
            const std::string s = std::isnan(x) ? "nan" : (x < 0 ? "-inf" : "inf");
            return right_justify(s, pad_left_ + pad_right_ + 1);
        }
        if (exp_format_) return format_scientific(x, precision_, min_digits_, pad_left_, exp_size_);
        return format_positional(x, kPrecision, pad_left_, pad_right_);
    }

private:
    bool exp_format_ = false;
    int precision_ = kPrecision;
    int min_digits_ = 0;
    int pad_left_ = 0;
    int pad_right_ = 0;
    int exp_size_ = -1;
};

// A row-major view of a 1-D or 2-D array, as _formatArray walks it.
struct Array {
    std::vector<std::size_t> shape;
    std::vector<double> data;

    std::size_t size() const { return data.size(); }
};

Array to_array(const xt::xtensor<double, 1>& a) {
    return Array{{a.shape(0)}, std::vector<double>(a.begin(), a.end())};
}

Array to_array(const xt::xtensor<double, 2>& a) {
    Array r{{a.shape(0), a.shape(1)}, {}};
    r.data.reserve(a.size());
    for (std::size_t i = 0; i < a.shape(0); ++i)
        for (std::size_t j = 0; j < a.shape(1); ++j) r.data.push_back(a(i, j));
    return r;
}

// The indices printed along an axis of length n of a summarised array: all, or the edge
// items at both ends.
std::vector<std::size_t> shown_indices(std::size_t n) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < n; ++i)
        if (n <= 2 * kEdgeItems || i < kEdgeItems || i >= n - kEdgeItems)
            idx.push_back(i);
    return idx;
}

// _extendLine: append `word`, first breaking the line if it would pass `width` -- unless
// the line holds only the indent, where breaking would not help.
void extend_line(std::string& s, std::string& line, const std::string& word, int width,
                 const std::string& indent) {
    const bool wrap = static_cast<int>(line.size() + word.size()) > width &&
                      line.size() > indent.size();
    if (wrap) {
        s += line.substr(0, line.find_last_not_of(' ') + 1) + "\n";
        line = indent;
    }
    line += word;
}

// _formatArray for 1-D and 2-D arrays (whose elements are single-line words, so
// _extendLine_pretty reduces to _extendLine). `separator` is ", " for repr, " " for str.
class ArrayFormatter {
public:
    ArrayFormatter(const Array& a, std::string separator, bool summarise, const FloatFormat& fmt)
        : a_(a), sep_(std::move(separator)), summarise_(summarise), fmt_(fmt) {
        sep_stripped_ = sep_.substr(0, sep_.find_last_not_of(' ') + 1);
    }

    std::string format(const std::string& next_line_prefix, int line_width) const {
        return recurse(0, 0, next_line_prefix, line_width);
    }

private:
    // Formats the sub-array at `axis` starting at flat `offset`. Nested levels are indented
    // one more column (to sit under the '[') and may use one column less (for the ']').
    std::string recurse(std::size_t axis, std::size_t offset, const std::string& hanging,
                        int width) const {
        if (axis == a_.shape.size()) return fmt_(a_.data[offset]);

        const std::size_t n = a_.shape[axis];
        std::size_t stride = 1;
        for (std::size_t k = axis + 1; k < a_.shape.size(); ++k) stride *= a_.shape[k];
        const bool summary = summarise_ && 2 * kEdgeItems < n;
        const std::string next_hanging = hanging + ' ';
        const auto item = [&](std::size_t i) {
            return recurse(axis + 1, offset + i * stride, next_hanging, width - 1);
        };

        std::string s;
        const std::size_t axes_left = a_.shape.size() - axis;
        if (axes_left == 1) {
            // Elements on lines, wrapped so the separator or ']' still fits.
            const int elem_width =
                width - std::max(static_cast<int>(sep_stripped_.size()), 1);
            std::string line = hanging;
            for (std::size_t i = 0; i + 1 < n; ++i) {
                if (summary && i == kEdgeItems) {
                    extend_line(s, line, "...", elem_width, hanging);
                    line += sep_;
                    i = n - kEdgeItems;  // resume at the trailing edge items
                }
                extend_line(s, line, item(i), elem_width, hanging);
                line += sep_;
            }
            extend_line(s, line, item(n - 1), elem_width, hanging);
            s += line;
        } else {
            // Sub-arrays one per line, blank lines between higher-dimensional blocks.
            const std::string line_sep = sep_stripped_ + std::string(axes_left - 1, '\n');
            for (std::size_t i = 0; i + 1 < n; ++i) {
                if (summary && i == kEdgeItems) {
                    s += hanging + "..." + line_sep;
                    i = n - kEdgeItems;
                }
                s += hanging + item(i) + line_sep;
            }
            s += hanging + item(n - 1);
        }
        return "[" + s.substr(hanging.size()) + "]";
    }

    const Array& a_;
    std::string sep_;
    std::string sep_stripped_;
    bool summarise_;
    const FloatFormat& fmt_;
};

// array2string(a, separator=separator, prefix=prefix, suffix=suffix) with default options.
std::string array2string(const Array& a, const std::string& separator, const std::string& prefix,
                         const std::string& suffix) {
    if (a.size() == 0) return "[]";
    const bool summarise = a.size() > kThreshold;

    // The paddings are measured on the printed values only (NumPy's _leading_trailing).
    std::vector<double> shown;
    if (!summarise) {
        shown = a.data;
    } else {
        std::vector<std::size_t> offsets{0};
        for (std::size_t axis = 0; axis < a.shape.size(); ++axis) {
            std::size_t stride = 1;
            for (std::size_t k = axis + 1; k < a.shape.size(); ++k) stride *= a.shape[k];
            std::vector<std::size_t> next;
            for (std::size_t base : offsets)
                for (std::size_t i : shown_indices(a.shape[axis]))
                    next.push_back(base + i * stride);
            offsets = std::move(next);
        }
        for (std::size_t off : offsets) shown.push_back(a.data[off]);
    }
    const FloatFormat fmt(shown);

    // Continuation lines start under the first element: past "[" and the prefix; the
    // suffix must fit on the last line, so it comes off the width.
    const std::string next_line_prefix = " " + std::string(prefix.size(), ' ');
    const int width = kLineWidth - static_cast<int>(suffix.size());
    return ArrayFormatter(a, separator, summarise, fmt).format(next_line_prefix, width);
}

std::string repr(const Array& a) {
    if (a.size() > 0) return "array(" + array2string(a, ", ", "array(", ")") + ")";
    // Empty: float64 is no longer implied, and the shape is shown unless it is (0,).
    if (a.shape.size() == 1) return "array([], dtype=float64)";
    std::string shape = "(";
    for (std::size_t k = 0; k < a.shape.size(); ++k)
        shape += (k ? ", " : "") + std::to_string(a.shape[k]);
    return "array([], shape=" + shape + "), dtype=float64)";
}

std::string str(const Array& a) { return array2string(a, " ", "", ""); }

}  // namespace

std::string array_repr(const xt::xtensor<double, 2>& a) { return repr(to_array(a)); }
std::string array_repr(const xt::xtensor<double, 1>& a) { return repr(to_array(a)); }
std::string array_str(const xt::xtensor<double, 2>& a) { return str(to_array(a)); }
std::string array_str(const xt::xtensor<double, 1>& a) { return str(to_array(a)); }

std::string tuple_repr(const std::vector<xt::xtensor<double, 2>>& arrays) {
    std::string s = "(";
    for (std::size_t i = 0; i < arrays.size(); ++i) s += (i ? ", " : "") + array_repr(arrays[i]);
    if (arrays.size() == 1) s += ",";
    return s + ")";
}

}  // namespace nn
