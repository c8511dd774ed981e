// DataLoader::gather transposes a tile of examples at a time (and requests the next tile's
// while it does): whatever the batch size against the tile, it equals the plain column copy.

#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "nn/data/csv.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/numpy_random.hpp"

TEMPLATE_TEST_CASE("DataLoader::gather equals gather_batch for every batch size around the tile", "[dataset]", float,
                   double) {
    const auto iris = nn::iris<TestType>();
    const nn::DataLoader<TestType> loader(iris);
    std::vector<std::size_t> order(iris.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    nn::NumpyRandom(7).shuffle(order);
    // Tiles are 16 floats or 8 doubles: one short, one whole, one more, several and a rest.
    for (const std::size_t count : {1, 7, 8, 9, 15, 16, 17, 33, 150}) {
        autodiff::Matrix<TestType> X, expected;
        autodiff::Labels y, expected_labels;
        loader.gather(order.data(), count, X, y);
        nn::gather_batch(iris, order.data(), count, expected, expected_labels);
        INFO("count " << count);
        REQUIRE((X == expected));
        REQUIRE(y == expected_labels);
    }
}
