// conv2d, max_pool2d and avg_pool2d against PyTorch's float64 values and gradients, on the
// fixtures written by tests/data/torch_conv/generate.py (several geometries each, 1x1
// images, strides, paddings, ties and a NaN included), to 1e-12 relative.

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"
#include "torch_fixture.hpp"

using namespace autodiff;
using test::FixtureCase;

namespace {

ImageShape image_of(const FixtureCase& c) {
    const std::vector<std::size_t> g = c.indices("geometry");
    return {g[0], g[1], g[2]};
}

Window window_of(const FixtureCase& c) {
    const std::vector<std::size_t> g = c.indices("geometry");
    return {g[3], g[4], g[5], g[6]};
}

}  // namespace

TEST_CASE("conv2d equals PyTorch's conv2d, values and gradients of x, W and b", "[torch][conv]") {
    const auto cases = test::load_torch_fixture("torch_conv/conv.txt");
    REQUIRE(cases.size() >= 6);
    for (const FixtureCase& c : cases)
        test::check_torch_case(c, {"x", "W", "b"}, [](const FixtureCase& c, const std::vector<Var<double>>& v) {
            return conv2d(v[0], image_of(c), v[1], v[2], window_of(c));
        });
}

TEST_CASE("max_pool2d and avg_pool2d equal PyTorch's, values and gradients", "[torch][conv]") {
    const auto cases = test::load_torch_fixture("torch_conv/pool.txt");
    std::size_t max_cases = 0, avg_cases = 0;
    for (const FixtureCase& c : cases) {
        const bool max = c.name.rfind("max_", 0) == 0;
        (max ? max_cases : avg_cases) += 1;
        test::check_torch_case(c, {"x"}, [max](const FixtureCase& c, const std::vector<Var<double>>& v) {
            return max ? max_pool2d(v[0], image_of(c), window_of(c)) : avg_pool2d(v[0], image_of(c), window_of(c));
        });
    }
    REQUIRE(max_cases >= 4);
    REQUIRE(avg_cases >= 3);
}
