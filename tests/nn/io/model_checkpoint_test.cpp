// load_weights into an existing MLP: a checkpoint that does not fit leaves every weight as it was.
#include <catch2/catch.hpp>

#include <cstring>

#include "../temp_dir.hpp"
#include "nn/io/model_checkpoint.hpp"

using Catch::Matchers::Contains;

namespace {

bool same_bits(const autodiff::Matrix<double>& a, const autodiff::Matrix<double>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Every weight of `net` equals the matching one of `original`, bit for bit.
bool same_weights(const nn::MLP<double>& net, const nn::MLP<double>& original) {
    for (std::size_t l = 0; l < net.layers.size(); ++l)
        if (!same_bits(net.layers[l].W.value, original.layers[l].W.value) ||
            !same_bits(net.layers[l].b.value, original.layers[l].b.value))
            return false;
    return true;
}

}  // namespace

TEST_CASE("load_weights checks every layer before it copies the first", "[checkpoint][model]") {
    test_support::TempDir dir("model-checkpoint");
    nn::MLP<double> net({4, 8, 3}, nn::Activation::relu, nn::Init::he, 1);
    const nn::MLP<double> original({4, 8, 3}, nn::Activation::relu, nn::Init::he, 1);
    nn::SGD<double> sgd(net.parameters(), 0.1);

    SECTION("its first layer fits, its last does not") {
        const nn::MLP<double> other({4, 8, 5}, nn::Activation::relu, nn::Init::he, 2);
        nn::save_model(dir.path / "other", other, sgd, 0);
        REQUIRE_THROWS_WITH(nn::load_weights(nn::load_checkpoint(dir.path / "other"), net),
                            Contains("W2 is 5x8 but layer2 of the model has 3x8"));
    }
    SECTION("all of the model's layers fit, but the checkpoint has one more") {
        const nn::MLP<double> deeper({4, 8, 3, 2}, nn::Activation::relu, nn::Init::he, 2);
        nn::save_model(dir.path / "deeper", deeper, sgd, 0);
        REQUIRE_THROWS_WITH(nn::load_weights(nn::load_checkpoint(dir.path / "deeper"), net),
                            Contains("more layers than the model's 2"));
    }
    CHECK(same_weights(net, original));
}

TEST_CASE("load_weights refuses backward() through a recording made before it", "[checkpoint][model]") {
    test_support::TempDir dir("model-checkpoint-version");
    nn::MLP<double> net({4, 8, 3}, nn::Activation::tanh, nn::Init::he, 1);
    const nn::MLP<double> other({4, 8, 3}, nn::Activation::tanh, nn::Init::he, 2);
    nn::SGD<double> sgd(net.parameters(), 0.1);
    nn::save_model(dir.path / "other", other, sgd, 0);
    const autodiff::Matrix<double> x = nn::NumpyRandom(3).randn(4, 5);
    autodiff::Tape<double> tape;
    const auto loss = autodiff::softmax_cross_entropy(net(tape, x), autodiff::Labels{0, 1, 2, 0, 1});
    nn::load_weights(nn::load_checkpoint(dir.path / "other"), net);
    // Else the gradient paired net's recorded activations with other's weights.
    REQUIRE_THROWS_WITH(tape.backward(loss), Contains("was modified in place after it was recorded"));
}
