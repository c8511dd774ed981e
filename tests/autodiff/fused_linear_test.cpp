// The fused linear(W, A, b, activation): one entry whose value and gradients are exactly those
// of activation(linear(W, A, b)) recorded as two entries, and which finite differences confirm.

#include <catch2/catch.hpp>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xsort.hpp>

#include "autodiff/autodiff.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;

namespace {

Var<double> unfused(Var<double> Z, Activation a) {
    switch (a) {
        case Activation::relu: return relu(Z);
        case Activation::sigmoid: return sigmoid(Z);
        case Activation::tanh: return tanh(Z);
        case Activation::identity: break;
    }
    return Z;
}

const Activation all_activations[] = {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::identity};

}  // namespace

TEST_CASE("fused linear with each activation matches finite differences on every shape", "[gradcheck][fused]") {
    std::mt19937_64 rng(13);
    const std::size_t sizes[] = {1, 3, 7};
    for (Activation a : all_activations)
        for (std::size_t n : sizes)
            for (std::size_t k : sizes)
                for (std::size_t m : sizes) {
                    INFO("activation " << int(a) << ", W " << n << "x" << k << ", A " << k << "x" << m);
                    const auto W = random_matrix(rng, {n, k}), A = random_matrix(rng, {k, m}),
                               b = random_matrix(rng, {n, 1});
                    // Near relu's kink a central difference straddles it: check relu where |Z| > 1e-3.
                    const Matrix<double> Z = xt::linalg::dot(W, A) + b;
                    const bool near_kink = xt::amin(xt::abs(Z))() < 1e-3;
                    if (a == Activation::relu && near_kink) continue;
                    auto f = [a](Tape<double>&, const std::vector<Var<double>>& x) {
                        return linear(x[0], x[1], x[2], a);
                    };
                    const GradcheckResult result = gradcheck<double>(f, {W, A, b});
                    INFO(result.summary());
                    REQUIRE(result.passed);
                    REQUIRE(result.worst_error <= 1e-6);
                }
}

TEST_CASE("fused linear equals activation(linear) recorded as two entries, bit for bit", "[fused]") {
    std::mt19937_64 rng(17);
    for (Activation a : all_activations)
        for (Shape s : test::sweep_shapes(rng)) {
            INFO("activation " << int(a) << ", Z " << to_string(s));
            Parameter<double> W(random_matrix(rng, {s.rows, 5}), "W"), b(random_matrix(rng, {s.rows, 1}), "b");
            const Matrix<double> A = random_matrix(rng, {5, s.cols}), R = random_matrix(rng, s);
            // Exact zeros in Z (zero bias and an all-zero example) check relu's derivative 0 at 0.
            Matrix<double> A0 = A;
            for (std::size_t i = 0; i < 5; ++i) A0(i, 0) = 0;
            b.value.fill(0.0);
            for (const Matrix<double>* input : {&A, static_cast<const Matrix<double>*>(&A0)}) {
                Tape<double> fused_tape, plain_tape;
                Var<double> x1 = fused_tape.leaf(*input), x2 = plain_tape.leaf(*input);
                Var<double> fused = linear(fused_tape.parameter(W), x1, fused_tape.parameter(b), a);
                fused_tape.backward(sum(fused * fused_tape.constant(R)));
                const Matrix<double> dW = W.grad, db = b.grad, dA = x1.grad();
                W.zero_grad();
                b.zero_grad();
                Var<double> plain = unfused(linear(plain_tape.parameter(W), x2, plain_tape.parameter(b)), a);
                plain_tape.backward(sum(plain * plain_tape.constant(R)));
                CHECK(fused_tape.size() + 1 == plain_tape.size() + (a == Activation::identity ? 1 : 0));
                const double tol = 0;  // the same operations in the same order
                for (std::size_t k = 0; k < fused.value().size(); ++k)
                    REQUIRE(std::abs(fused.value().data()[k] - plain.value().data()[k]) <= tol);
                for (std::size_t k = 0; k < dW.size(); ++k) REQUIRE(std::abs(dW.data()[k] - W.grad.data()[k]) <= tol);
                for (std::size_t k = 0; k < db.size(); ++k) REQUIRE(std::abs(db.data()[k] - b.grad.data()[k]) <= tol);
                for (std::size_t k = 0; k < dA.size(); ++k) REQUIRE(std::abs(dA.data()[k] - x2.grad().data()[k]) <= tol);
                W.zero_grad();
                b.zero_grad();
            }
        }
}
