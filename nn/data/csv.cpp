#include "nn/data/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include <ext/stdio_filebuf.h>  // libstdc++: a stream over a descriptor

#include "nn/data_error.hpp"
#include "nn/io/regular_file.hpp"

namespace nn {
namespace {

std::string_view trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = s.find_last_not_of(" \t");
    return s.substr(first, last - first + 1);
}

std::vector<std::string_view> split_fields(std::string_view line) {
    std::vector<std::string_view> fields;
    for (;;) {
        const auto comma = line.find(',');
        fields.push_back(trim(line.substr(0, comma)));
        if (comma == std::string_view::npos) return fields;
        line.remove_prefix(comma + 1);
    }
}

// A quoted field may hold commas and quotes, which split_fields would cut apart or keep:
// "1" became a class name with the quotes in it. Refused, naming where, rather than misread.
void refuse_quoted_fields(const std::vector<std::string_view>& fields, const std::string& where) {
    for (std::size_t c = 0; c < fields.size(); ++c) {
        if (fields[c].find('"') != std::string_view::npos) {
            throw DataError(where + "column " + std::to_string(c + 1) + ": '" + std::string(fields[c]) +
                            "': quoted fields are not supported (write the values without quotes)");
        }
    }
}

// Editors on Windows start UTF-8 files with a byte order mark; left in, it made the first
// field "not a number" and so the first example a header, silently dropped.
void skip_byte_order_mark(std::string& first_line) {
    constexpr std::string_view bom = "\xEF\xBB\xBF";
    if (std::string_view(first_line).substr(0, bom.size()) == bom) first_line.erase(0, bom.size());
}

// A number from_chars finds out of double's range, at either end: read in long double's wider
// range and rounded, one below double's smallest is 0 (1e-400, as strtod, NumPy and pandas
// read it: it was refused as "not a finite number"; found by an attack) and one past its
// largest is infinite, which the caller refuses. Past long double's range too: infinite.
double beyond_double(std::string_view s) {
    long double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::numeric_limits<double>::infinity();
    return static_cast<double>(v);
}

// from_chars, unlike strtod, ignores the C locale: "3.5" parses the same everywhere.
std::optional<double> parse_number(std::string_view s) {
    // from_chars rejects the leading '+' that other CSV writers emit.
    if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || end != s.data() + s.size()) return std::nullopt;
    if (ec == std::errc::result_out_of_range) return beyond_double(s);
    if (ec != std::errc()) return std::nullopt;
    return v;
}

// A label made of digits only is a class index, however many digits it has: one too large
// for size_t saturates (and is then refused as too large, as "4000000000" is), rather than
// turning the whole column into class names.
std::optional<std::size_t> parse_index(std::string_view s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::size_t>::max();
    return v;
}

bool looks_like_header(const std::vector<std::string_view>& fields) {
    for (std::size_t c = 0; c + 1 < fields.size(); ++c) {
        if (parse_number(fields[c])) return false;
    }
    return true;
}

// Turns the class column into indices once all rows are read: integers only if every
// label is one, so a file mixing "1" and "cat" is read as names throughout.
void assign_classes(const std::string& name, const std::vector<std::string>& raw, std::size_t& classes,
                    std::vector<std::string>& class_names, std::vector<std::size_t>& labels) {
    labels.resize(raw.size());
    bool all_integers = true;
    for (std::size_t i = 0; i < raw.size() && all_integers; ++i) {
        if (const auto k = parse_index(raw[i])) {
            labels[i] = *k;
        } else {
            all_integers = false;
        }
    }
    if (all_integers) {
        // Every index below the largest becomes a class: a corrupted "4000000000" must not
        // allocate four billion class names (nor SIZE_MAX wrap classes around to 0).
        constexpr std::size_t max_class_index = 65535;
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (labels[i] > max_class_index) {
                throw DataError(name + ": class index " + raw[i] + " of example " +
                                std::to_string(i) + " is larger than " + std::to_string(max_class_index));
            }
        }
        classes = 0;
        for (std::size_t k : labels) classes = std::max(classes, k + 1);
        class_names.clear();
        for (std::size_t k = 0; k < classes; ++k) class_names.push_back(std::to_string(k));
        return;
    }
    std::map<std::string, std::size_t> index;
    class_names.clear();
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const auto [it, fresh] = index.emplace(raw[i], class_names.size());
        if (fresh) class_names.push_back(raw[i]);
        labels[i] = it->second;
    }
    classes = class_names.size();
}

}  // namespace

template <class T>
Dataset<T> parse_csv_dataset(std::istream& in, const std::string& name) {
    std::vector<T> values;  // examples × features, row by row as read
    std::vector<std::string> raw_labels;
    std::size_t columns = 0;  // fixed by the first non-blank line
    // The first row may be a header of numbers (columns named "0", "1", ..., or scikit-learn's
    // "150,4,setosa,versicolor,virginica"): decided once every label is known.
    bool first_row_is_data = false;
    std::string first_row_error;  // why the first row cannot be data, if it cannot
    std::string first_label;
    bool first_features_integers = true;  // of a first row that is numbers: "0,1,...,783,label" may be a header
    std::string line;
    for (std::size_t line_no = 1; std::getline(in, line); ++line_no) {
        if (line_no == 1) skip_byte_order_mark(line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (trim(line).empty()) continue;
        const auto where = name + ":" + std::to_string(line_no) + ": ";
        const auto fields = split_fields(line);
        refuse_quoted_fields(fields, where);
        const bool first = columns == 0;
        if (first) {
            columns = fields.size();
            if (columns < 2) {
                throw DataError(where + "found " + std::to_string(columns) +
                                " column; need at least one feature column and a class column");
            }
            if (looks_like_header(fields)) continue;
        }
        if (fields.size() != columns) {
            throw DataError(where + "expected " + std::to_string(columns) + " columns (" +
                            std::to_string(columns - 1) + " features and the class), found " +
                            std::to_string(fields.size()));
        }
        std::vector<T> row;
        for (std::size_t c = 0; c + 1 < columns && (first_row_error.empty() || !first); ++c) {
            const auto v = parse_number(fields[c]);
            const auto column = "column " + std::to_string(c + 1) + ": '" + std::string(fields[c]) + "'";
            if (!v && first) {
                first_row_error = where + column + " is not a number";
                continue;
            }
            if (first) first_features_integers = first_features_integers && parse_index(fields[c]).has_value();
            if (!v) throw DataError(where + column + " is not a number");
            const T value = static_cast<T>(*v);
            if (!std::isfinite(value)) {
                throw DataError(where + column + " is not a finite number (NaN and Inf are not data)");
            }
            row.push_back(value);
        }
        if (fields.back().empty()) throw DataError(where + "the class (last column) is empty");
        if (first) {
            first_label = std::string(fields.back());
            first_row_is_data = first_row_error.empty();
            if (!first_row_is_data) continue;
        }
        values.insert(values.end(), row.begin(), row.end());
        raw_labels.emplace_back(fields.back());
    }
    if (in.bad()) throw DataError(name + ": read error");
    // A first row of numbers is a header only when they are whole (column names): "5.1,3.5,cat"
    // above integer classes is an example whose class is a name (found by an attack: it was dropped).
    const bool header_of_numbers =
        ((first_row_is_data && first_features_integers) || !first_row_error.empty()) && !parse_index(first_label) &&
        raw_labels.size() > std::size_t(first_row_is_data ? 1 : 0) &&
        std::all_of(raw_labels.begin() + (first_row_is_data ? 1 : 0), raw_labels.end(),
                    [](const std::string& l) { return parse_index(l).has_value(); });
    if (!first_row_error.empty() && !header_of_numbers) throw DataError(first_row_error);
    if (first_row_is_data && header_of_numbers) {
        raw_labels.erase(raw_labels.begin());
        values.erase(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(columns - 1));
    }
    if (raw_labels.empty()) {
        throw DataError(name + ": empty file: no data rows" +
                        (columns ? std::string(" after the header") : std::string()));
    }

    Dataset<T> data;
    const std::size_t features = columns - 1;
    const std::size_t n = raw_labels.size();
    data.features.resize({features, n});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t f = 0; f < features; ++f) data.features(f, i) = values[i * features + f];
    }
    assign_classes(name, raw_labels, data.classes, data.class_names, data.labels);
    return data;
}

template <class T>
Dataset<T> load_csv_dataset(const std::string& path) {
    RegularFile file(path, "CSV file");
    // Read through the descriptor checked to be a regular file (not reopened by name).
    __gnu_cxx::stdio_filebuf<char> buffer(file.release(), std::ios::in);
    std::istream in(&buffer);
    return parse_csv_dataset<T>(in, path);
}

template <class T>
Dataset<T> iris() {
    std::istringstream in{std::string(detail::iris_csv_text())};
    return parse_csv_dataset<T>(in, "nn/data/iris.csv (embedded)");
}

#define NN_CSV_INSTANTIATE(T)                                                       \
    template Dataset<T> parse_csv_dataset<T>(std::istream&, const std::string&);   \
    template Dataset<T> load_csv_dataset<T>(const std::string&);                   \
    template Dataset<T> iris<T>();
NN_CSV_INSTANTIATE(float)
NN_CSV_INSTANTIATE(double)
#undef NN_CSV_INSTANTIATE

}  // namespace nn
