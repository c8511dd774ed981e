#pragma once
// Reads the PyTorch fixtures written by tests/data/*/generate.py through fixture_format.py
// (the format is described there): cases of named 2-D float64 arrays, one array per line.
// Shared by every test that compares tapegrad with PyTorch.

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "autodiff/matrix.hpp"
#include "autodiff/tape.hpp"

namespace test {

struct FixtureCase {
    std::string file;
    std::string name;
    std::map<std::string, autodiff::Matrix<double>> arrays;

    bool has(const std::string& key) const { return arrays.count(key) != 0; }
    const autodiff::Matrix<double>& operator[](const std::string& key) const {
        auto it = arrays.find(key);
        if (it == arrays.end()) throw std::runtime_error(file + ": case " + name + " has no array " + key);
        return it->second;
    }
    double scalar(const std::string& key) const { return (*this)[key](0, 0); }
    // Whole numbers stored as doubles (class indices, token ids), in row-major order.
    std::vector<std::size_t> indices(const std::string& key) const {
        std::vector<std::size_t> out;
        for (double v : (*this)[key]) out.push_back(static_cast<std::size_t>(v));
        return out;
    }
    // The sizes a case's name carries after its kind: "conv2d_1_2_5_3_1_2" -> 1 2 5 3 1 2.
    std::vector<std::size_t> numbers() const {
        std::vector<std::size_t> out;
        std::size_t at = name.find('_');
        while (at != std::string::npos) {
            const std::size_t next = name.find('_', at + 1);
            const std::string part = name.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
            if (!part.empty() && std::isdigit(static_cast<unsigned char>(part[0]))) out.push_back(std::stoul(part));
            at = next;
        }
        return out;
    }
};

// `relative_path` is under tests/data, e.g. "torch_ops/elementwise.txt".
inline std::vector<FixtureCase> load_torch_fixture(const std::string& relative_path) {
    const std::string path = std::string(TAPEGRAD_TEST_DATA) + "/" + relative_path;
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open (regenerate with its generate.py)");
    std::vector<FixtureCase> cases;
    std::string line;
    std::size_t line_number = 0;
    while (std::getline(in, line)) {
        ++line_number;
        if (line.empty() || line[0] == '#') continue;
        std::istringstream words(line);
        std::string key;
        words >> key;
        if (key == "case") {
            cases.push_back({relative_path, "", {}});
            words >> cases.back().name;
            continue;
        }
        std::size_t rows = 0, cols = 0;
        if (cases.empty() || !(words >> rows >> cols))
            throw std::runtime_error(path + ":" + std::to_string(line_number) + ": expected 'case NAME' or 'NAME ROWS COLS VALUES'");
        autodiff::Matrix<double> m({rows, cols});
        std::string token;
        for (double& v : m) {
            if (!(words >> token))
                throw std::runtime_error(path + ":" + std::to_string(line_number) + ": " + key + " has too few values");
            v = std::strtod(token.c_str(), nullptr);  // also reads nan and inf
        }
        if (words >> token) throw std::runtime_error(path + ":" + std::to_string(line_number) + ": " + key + " has too many values");
        cases.back().arrays[key] = std::move(m);
    }
    if (cases.empty()) throw std::runtime_error(path + ": no cases");
    return cases;
}

// Elementwise |actual - expected| <= max(relative * max(|expected|, 1e-3 * largest |expected|), 1e-13):
// relative per element, except that elements far below the array's scale (where rounding
// in a sum of larger terms dominates) are held to the array's scale instead, and results
// that are rounding noise around 0 (PyTorch's layer_norm of one feature gives 2e-14, not 0)
// to 1e-13 absolute (or what the caller says).
inline void require_matches_torch(const autodiff::Matrix<double>& actual, const autodiff::Matrix<double>& expected,
                                  const std::string& what, double relative = 1e-12, double absolute = 1e-13) {
    INFO(what);
    REQUIRE(actual.shape()[0] == expected.shape()[0]);
    REQUIRE(actual.shape()[1] == expected.shape()[1]);
    double largest = 0;
    for (double e : expected) largest = std::max(largest, std::abs(e));
    for (std::size_t k = 0; k < expected.size(); ++k) {
        const double a = actual.data()[k], e = expected.data()[k];
        if (std::isnan(e) || std::isinf(e)) {
            INFO("element " << k);
            REQUIRE((std::isnan(e) ? std::isnan(a) : a == e));
            continue;
        }
        const double bound = std::max(relative * std::max(std::abs(e), 1e-3 * largest), absolute);
        INFO("element " << k << " (row " << k / expected.shape()[1] << ", column " << k % expected.shape()[1]
                        << "): tapegrad " << a << ", torch " << e);
        REQUIRE(std::abs(a - e) <= bound);
    }
}

// Records op(case, leaves) over leaves made of the case's `inputs`, sweeps back the case's
// `seed` and compares the value and every input's gradient with PyTorch's (`out`, `grad_<input>`).
template <class Op>
void check_torch_case(const FixtureCase& c, const std::vector<std::string>& inputs, Op&& op,
                      double relative = 1e-12, double absolute = 1e-13) {
    INFO(c.file << ": case " << c.name);
    autodiff::Tape<double> tape;
    std::vector<autodiff::Var<double>> leaves;
    for (const std::string& name : inputs) leaves.push_back(tape.leaf(c[name]));
    autodiff::Var<double> y = op(c, leaves);
    require_matches_torch(y.value(), c["out"], "value", relative, absolute);
    tape.backward(y, c["seed"]);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        require_matches_torch(leaves[i].grad(), c["grad_" + inputs[i]], "gradient of " + inputs[i], relative, absolute);
}

}  // namespace test
