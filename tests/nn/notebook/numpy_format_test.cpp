#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xadapt.hpp>

#include "nn/notebook/numpy_format.hpp"

// Every case in the fixture holds arrays and the exact text NumPy 1.24 printed for them;
// see tests/data/numpy_format/generate.py for the format and how the cases were chosen.

namespace {

struct FixtureArray {
    std::vector<std::size_t> shape;
    std::vector<double> values;
};

struct FixtureCase {
    std::string kind;  // "array" or "tuple"
    std::string name;
    std::vector<FixtureArray> arrays;
    std::string repr;
    std::string str;  // "array" cases only
};

class Reader {
public:
    explicit Reader(std::string text) : text_(std::move(text)) {}

    bool at_end() const { return pos_ >= text_.size(); }

    std::string line() {
        const auto nl = text_.find('\n', pos_);
        if (nl == std::string::npos) throw std::runtime_error("fixture: missing newline");
        std::string l = text_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        return l;
    }

    // "<tag> <n>\n" then n bytes and a newline.
    std::string block(const std::string& tag) {
        std::istringstream head(line());
        std::string t;
        std::size_t n = 0;
        head >> t >> n;
        if (t != tag || pos_ + n >= text_.size() || text_[pos_ + n] != '\n')
            throw std::runtime_error("fixture: bad " + tag + " block");
        std::string b = text_.substr(pos_, n);
        pos_ += n + 1;
        return b;
    }

private:
    std::string text_;
    std::size_t pos_ = 0;
};

// The text after "<tag> " on a line that must start with it.
std::string field(const std::string& line, const std::string& tag) {
    if (line.compare(0, tag.size() + 1, tag + " ") != 0)
        throw std::runtime_error("fixture: expected '" + tag + "', got: " + line.substr(0, 40));
    return line.substr(tag.size() + 1);
}

std::vector<FixtureCase> load_cases() {
    std::ifstream in(std::string(TAPEGRAD_TEST_DATA) + "/numpy_format/cases.txt",
                     std::ios::binary);
    if (!in) throw std::runtime_error("cannot open numpy_format/cases.txt");
    std::stringstream ss;
    ss << in.rdbuf();
    Reader r(ss.str());

    std::vector<FixtureCase> cases;
    while (!r.at_end()) {
        const std::string head = r.line();
        if (head.empty() || head[0] == '#') continue;
        FixtureCase c;
        const std::string rest = field(head, "case");
        c.kind = rest.substr(0, rest.find(' '));
        c.name = rest.substr(rest.find(' ') + 1);
        const std::size_t count = std::stoul(field(r.line(), "arrays"));
        for (std::size_t k = 0; k < count; ++k) {
            FixtureArray a;
            std::istringstream shape(field(r.line(), "shape"));
            for (std::size_t d; shape >> d;) a.shape.push_back(d);
            std::istringstream values(field(r.line(), "values"));
            // strtod reads float.hex() output ("-0x1.8p-3"), "inf", "-inf" and "nan" exactly.
            for (std::string v; values >> v;) a.values.push_back(std::strtod(v.c_str(), nullptr));
            c.arrays.push_back(std::move(a));
        }
        c.repr = r.block("repr");
        if (c.kind == "array") c.str = r.block("str");
        if (r.line() != "end") throw std::runtime_error("fixture: missing 'end' in " + c.name);
        cases.push_back(std::move(c));
    }
    return cases;
}

xt::xtensor<double, 2> to_2d(const FixtureArray& a) {
    REQUIRE(a.shape.size() == 2);
    xt::xtensor<double, 2> t = xt::adapt(a.values, {a.shape[0], a.shape[1]});
    return t;
}

xt::xtensor<double, 1> to_1d(const FixtureArray& a) {
    REQUIRE(a.shape.size() == 1);
    xt::xtensor<double, 1> t = xt::adapt(a.values, {a.shape[0]});
    return t;
}

}  // namespace

TEST_CASE("numpy_format: repr, str and tuple text equal NumPy 1.24's for every fixture case",
          "[numpy_format]") {
    const auto cases = load_cases();
    REQUIRE(cases.size() > 500);  // guards against a silently truncated fixture

    std::size_t checked = 0;
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        if (c.kind == "tuple") {
            std::vector<xt::xtensor<double, 2>> arrays;
            for (const auto& a : c.arrays) arrays.push_back(to_2d(a));
            CHECK(nn::tuple_repr(arrays) == c.repr);
        } else {
            REQUIRE(c.arrays.size() == 1);
            const auto& a = c.arrays[0];
            REQUIRE(a.values.size() ==
                    (a.shape.size() == 2 ? a.shape[0] * a.shape[1] : a.shape.at(0)));
            if (a.shape.size() == 2) {
                const auto t = to_2d(a);
                CHECK(nn::array_repr(t) == c.repr);
                CHECK(nn::array_str(t) == c.str);
            } else {
                const auto t = to_1d(a);
                CHECK(nn::array_repr(t) == c.repr);
                CHECK(nn::array_str(t) == c.str);
            }
        }
        ++checked;
    }
    CHECK(checked == cases.size());
}

TEST_CASE("numpy_format: the notebook's printed parameters", "[numpy_format]") {
    // Literal text from the NumPy notebook's output (first rows of W1), as a readable anchor
    // independent of the fixture.
    const xt::xtensor<double, 2> w = {{0.01624345, -0.00611756}, {-0.02301539, 0.01744812}};
    CHECK(nn::array_repr(w) ==
          "array([[ 0.01624345, -0.00611756],\n       [-0.02301539,  0.01744812]])");
    CHECK(nn::array_str(w) == "[[ 0.01624345 -0.00611756]\n [-0.02301539  0.01744812]]");
    const xt::xtensor<double, 2> b = {{0.0030017}, {-0.0035225}};
    CHECK(nn::tuple_repr({b}) == "(array([[ 0.0030017],\n       [-0.0035225]]),)");
}
