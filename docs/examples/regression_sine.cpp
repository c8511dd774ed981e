// docs/guide.md, example 3: regression. An MLP built from parts (nn::Sequential of Linear and
// Tanh) learns y = sin 3x on [-1, 1] with the mean squared error, trained by nn::Trainer.
// Exits 1 unless the held-out MSE falls below 0.005.

#include <cmath>
#include <cstdio>

#include "nn/activation_layer.hpp"
#include "nn/linear.hpp"
#include "nn/sequential.hpp"
#include "nn/training.hpp"

// n points x ~ U(-1, 1) and their targets sin 3x, one example per column (1 x n each).
nn::RegressionData<double> sine(std::size_t n, std::uint32_t seed) {
    nn::NumpyRandom rng(seed);
    nn::RegressionData<double> data{autodiff::Matrix<double>({1, n}), autodiff::Matrix<double>({1, n})};
    for (std::size_t j = 0; j < n; ++j) {
        data.inputs(0, j) = 2 * rng.uniform() - 1;
        data.targets(0, j) = std::sin(3 * data.inputs(0, j));
    }
    return data;
}

int main() {
    nn::Sequential<double> net;  // 1 -> 32 -> 32 -> 1; parameters "0.W", "0.b", "2.W", ...
    nn::NumpyRandom rng(0);
    net.add<nn::Linear<double>>(1, 32, rng, nn::Init::glorot);
    net.add<nn::Tanh<double>>();
    net.add<nn::Linear<double>>(32, 32, rng, nn::Init::glorot);
    net.add<nn::Tanh<double>>();
    net.add<nn::Linear<double>>(32, 1, rng, nn::Init::glorot);

    nn::Adam<double> adam(net.parameters(), 0.01);
    nn::Trainer<double> trainer(net, adam, nn::mse_loss<double>(), /*batch_size=*/32, /*seed=*/0);
    trainer.set_schedule(nn::LearningRateSchedule::cosine(0.01, 200 * 8).with_warmup(40));  // per step: 8 per epoch

    const auto train = sine(256, 1), test = sine(100, 2);
    const auto history = trainer.fit(train, test, 0, 200, [](const nn::EpochMetrics& m) {
        if (m.epoch % 50 == 0) std::printf("epoch %3zu: train MSE %.5f, test MSE %.5f\n", m.epoch, m.train.loss, m.test.loss);
    });
    const double mse = history.back().test.loss;
    std::printf("held-out MSE after 200 epochs: %.5f\n", mse);
    return mse < 0.005 ? 0 : 1;
}
