// Optimizers against torch.optim (float64 fixtures from tests/data/torch_nn/generate.py):
// weight decay (L2 for SGD, momentum and Adam; decoupled for AdamW) and clip_grad_norm.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <type_traits>

#include "../autodiff/torch_fixture.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/value_and_grad.hpp"
#include "nn/non_finite.hpp"
#include "nn/optimizers.hpp"
#include "nn/schedule.hpp"

using autodiff::Matrix;
using autodiff::Parameter;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<nn::Optimizer<double>> make(const std::string& name, const std::vector<Parameter<double>*>& ps) {
    if (name == "sgd") return std::make_unique<nn::SGD<double>>(ps, 0.1);
    if (name == "sgd_wd") return std::make_unique<nn::SGD<double>>(ps, 0.1, 0.05);
    if (name == "momentum_wd") return std::make_unique<nn::Momentum<double>>(ps, 0.1, 0.9, 0.05);
    if (name == "adam_wd") return std::make_unique<nn::Adam<double>>(ps, 0.01, 0.9, 0.999, 1e-8, 0.05);
    if (name == "adamw") return std::make_unique<nn::AdamW<double>>(ps, 0.01, 0.05);
    return std::make_unique<nn::Adam<double>>(ps, 0.01);
}

std::unique_ptr<nn::Optimizer<double>> make(const std::string& name, Parameter<double>& p) { return make(name, {&p}); }

}  // namespace

TEST_CASE("optimizers with weight decay take PyTorch's steps", "[optimizers][torch]") {
    for (const test::FixtureCase& c : test::load_torch_fixture("torch_nn/optimizers.txt")) {
        if (c.name == "clip_grad_norm") continue;
        SECTION(c.name) {
            Parameter<double> p(c["w0"], "w");
            auto opt = make(c.name, p);
            for (int t = 0; t < 3; ++t) {
                p.grad = c["g" + std::to_string(t)];
                opt->step();
                test::require_matches_torch(p.value, c["w" + std::to_string(t + 1)], c.name + " step " + std::to_string(t + 1), 1e-12);
            }
        }
    }
}

TEST_CASE("clip_grad_norm scales the gradients as torch.nn.utils.clip_grad_norm_", "[optimizers][torch]") {
    for (const test::FixtureCase& c : test::load_torch_fixture("torch_nn/optimizers.txt")) {
        if (c.name != "clip_grad_norm") continue;
        Parameter<double> a(xt::zeros<double>({2, 2}), "a"), b(xt::zeros<double>({3, 1}), "b");
        a.grad = c["ga"];
        b.grad = c["gb"];
        const double norm = nn::clip_grad_norm<double>({&a, &b}, c.scalar("max_norm"));
        REQUIRE_THAT(norm, Catch::Matchers::WithinRel(c.scalar("norm"), 1e-14));
        test::require_matches_torch(a.grad, c["clipped_a"], "clipped a", 1e-12);
        test::require_matches_torch(b.grad, c["clipped_b"], "clipped b", 1e-12);
        // Below the limit nothing changes.
        const Matrix<double> before = a.grad;
        nn::clip_grad_norm<double>({&a, &b}, 1e6);
        REQUIRE((a.grad == before));
        b.grad(0, 0) = std::numeric_limits<double>::infinity();
        REQUIRE_THROWS_WITH(nn::clip_grad_norm<double>({&a, &b}, 1.0), Contains("gradient of 'b' holds inf"));
    }
}

// Found by an attack: a parameter listed twice counted twice in the norm and was scaled
// twice: a gradient of norm 5 clipped to 1 came out of norm 0.1, silently.
TEST_CASE("clip_grad_norm counts and scales a parameter listed twice once", "[optimizers]") {
    Parameter<double> a(xt::zeros<double>({1, 2}), "a");
    a.grad = Matrix<double>{{3.0, 4.0}};
    const double norm = nn::clip_grad_norm<double>({&a, &a}, 1.0);
    CHECK(norm == 5.0);
    const double factor = 1.0 / (5.0 + 1e-6);  // as the function computes it
    CHECK((a.grad == Matrix<double>{{3.0 * factor, 4.0 * factor}}));
}

TEST_CASE("clip_grad_norm takes the norm of gradients whose squares overflow or underflow a double", "[optimizers]") {
    // Clipping is for exploding gradients: four of 1e200 (a norm of 2e200, a double) were
    // refused as 'the total gradient norm overflows (inf)', and four of 1e-200 had a norm of 0.
    for (const double g : {1e200, 1e-200}) {
        INFO("gradients of " << g);
        Parameter<double> a(xt::zeros<double>({2, 2}), "a");
        a.grad = xt::ones<double>({2, 2}) * g;
        REQUIRE_THAT(nn::clip_grad_norm<double>({&a}, 1.0), Catch::Matchers::WithinRel(2 * g, 1e-15));
        const double clipped = g > 1 ? 0.5 : g;  // to a norm of 1: each 1 / sqrt(4)
        for (const double x : a.grad) REQUIRE_THAT(x, Catch::Matchers::WithinRel(clipped, 1e-15));
    }
}

TEST_CASE("a schedule may bring the rate to 0; a negative or NaN rate is refused", "[optimizers]") {
    Parameter<double> p(xt::ones<double>({2, 2}), "p");
    nn::SGD<double> sgd({&p}, 0.1, 0.01);
    sgd.set_learning_rate(0.0);
    p.grad = xt::ones<double>({2, 2});
    sgd.step();
    REQUIRE((p.value == Matrix<double>(xt::ones<double>({2, 2}))));
    REQUIRE_THROWS_WITH(sgd.set_learning_rate(-1.0), Contains("learning rate must be a finite number >= 0"));
    REQUIRE_THROWS_WITH(sgd.set_learning_rate(NAN), Contains("learning rate must be a finite number >= 0"));
    REQUIRE_THROWS_WITH(nn::AdamW<double>({&p}, 1e-3, -0.5), Contains("AdamW: weight decay must be"));
    REQUIRE(nn::make_optimizer<double>("adamw", {&p}, 0.1)->name() == "adamw");
}

TEST_CASE("learning-rate schedules: constant, step, cosine to 0, linear warm-up", "[optimizers][schedule]") {
    using S = nn::LearningRateSchedule;
    REQUIRE(S::constant(0.5).at(1000) == 0.5);
    const S step = S::step(1.0, 3, 0.5);
    REQUIRE(step.at(0) == 1.0);
    REQUIRE(step.at(2) == 1.0);
    REQUIRE(step.at(3) == 0.5);
    REQUIRE(step.at(7) == 0.25);
    const S cosine = S::cosine(2.0, 4);
    REQUIRE(cosine.at(0) == 2.0);
    REQUIRE_THAT(cosine.at(2), Catch::Matchers::WithinAbs(1.0, 1e-15));
    REQUIRE(cosine.at(4) == 0.0);
    REQUIRE(cosine.at(9) == 0.0);
    const S warm = S::cosine(2.0, 4).with_warmup(2);
    REQUIRE(warm.at(0) == 0.0);
    REQUIRE(warm.at(1) == 1.0);
    REQUIRE(warm.at(2) == 2.0);
    REQUIRE(warm.at(6) == 0.0);
    REQUIRE(S::step(1.0, 2).with_warmup(4).at(6) == Approx(0.1).epsilon(0).margin(1e-15));
    REQUIRE_THROWS(S::constant(0.0));
    REQUIRE_THROWS(S::step(1.0, 0));
    REQUIRE_THROWS_WITH(S::cosine(1.0, 0), Catch::Matchers::Contains("at least 1 step"));  // was rate 0 throughout
    // train_mlp's per-epoch cosine: unchanged formula.
    REQUIRE(nn::learning_rate_at(nn::Schedule::cosine, 1.0, 0, 10) == 1.0);
    REQUIRE(nn::learning_rate_at(nn::Schedule::cosine, 1.0, 5, 10) == Approx(0.5).epsilon(0).margin(1e-15));
}

// step_and_zero_grad() is step() then zero_grad(), whichever optimizer: Adam's one pass gives
// the same weights and moments bit for bit, and with a parameter listed twice (updated twice
// with its gradient by step()) it must not hand the second update a zeroed gradient.
TEST_CASE("step_and_zero_grad equals step then zero_grad, a parameter listed twice included", "[optimizers]") {
    for (const std::string name : {"sgd", "sgd_wd", "momentum_wd", "adam", "adam_wd", "adamw"}) {
        for (bool twice : {false, true}) {
            Parameter<double> a(Matrix<double>{{0.5, -1.5}, {2.0, 0.25}}), b(a.value);
            auto gradient = [](Parameter<double>& p, int step) {
                p.grad = Matrix<double>{{0.1, -0.2}, {0.3 * step, -0.05}};
            };
            auto list = [&](Parameter<double>& p) {
                return twice ? std::vector<Parameter<double>*>{&p, &p} : std::vector<Parameter<double>*>{&p};
            };
            const std::unique_ptr<nn::Optimizer<double>> fused = make(name, list(a)), plain = make(name, list(b));
            for (int step = 1; step <= 3; ++step) {
                gradient(a, step);
                gradient(b, step);
                fused->step_and_zero_grad();
                plain->step();
                plain->zero_grad();
                INFO(name << (twice ? ", listed twice" : "") << ", step " << step);
                REQUIRE((a.value == b.value));
                REQUIRE((a.grad == Matrix<double>(xt::zeros<double>({2, 2}))));
                REQUIRE((b.grad == a.grad));
            }
            const auto sa = fused->state(), sb = plain->state();
            REQUIRE(sa.size() == sb.size());
            for (const auto& [key, m] : sa) REQUIRE((sb.at(key) == m));
        }
    }
}

// The fused pass checks every new weight, so that nn::Trainer need not read them again: true
// only when all are finite. SGD's weight overflows here (1.79e308 + 0.1 * 1e308).
// Adam stores moments below the smallest normal number as 0 (nn/adam_update.cpp): with an
// epsilon far below the gradient, a flushed second moment left m / epsilon as the step.
TEMPLATE_TEST_CASE("Adam with an epsilon below a tiny gradient steps by the learning rate", "[optimizers]", float,
                   double) {
    using T = TestType;
    // g^2 (1 - beta2) is subnormal (by 6 bits: it keeps most of its precision), g itself is
    // not; epsilon is far below g.
    const T g = std::sqrt(std::numeric_limits<T>::min()) * T(4), epsilon = g * T(1e-14);
    Parameter<T> p(Matrix<T>{{T(1)}});
    nn::Adam<T> adam({&p}, T(1e-3), T(0.9), T(0.999), epsilon);
    for (int step = 0; step < 10; ++step) {
        p.grad = Matrix<T>{{g}};
        adam.step();
    }
    // A constant gradient: each step's m / sqrt(v), bias-corrected, is 1 (float was at -1e8).
    REQUIRE_THAT(double(p.value(0, 0)), Catch::Matchers::WithinAbs(0.99, std::is_same_v<T, float> ? 1e-6 : 1e-12));
}

TEST_CASE("SGD's and Adam's step_and_zero_grad say whether every updated weight is finite", "[optimizers]") {
    for (const std::string name : {"sgd", "sgd_wd", "adam"}) {
        INFO(name);
        Parameter<double> p(Matrix<double>{{0.5, -1.5}});
        const std::unique_ptr<nn::Optimizer<double>> opt = make(name, p);
        p.grad = Matrix<double>{{0.1, -0.2}};
        REQUIRE(opt->step_and_zero_grad());
        p.grad = Matrix<double>{{0.1, name == "adam" ? NAN : -1e308}};
        p.value(0, 1) = 1.79e308;
        REQUIRE_FALSE(opt->step_and_zero_grad());
        REQUIRE((p.grad == Matrix<double>{{0.0, 0.0}}));
    }
}

TEST_CASE("an optimizer refuses a null pointer in its parameter list, saying where", "[optimizers][errors]") {
    Parameter<double> p(Matrix<double>({1, 1}), "p");
    REQUIRE_THROWS_WITH(nn::SGD<double>({&p, nullptr}, 0.1), Contains("parameter 1 of 2 is a null pointer"));
    REQUIRE_THROWS_WITH(nn::Adam<double>({nullptr}, 0.1), Contains("parameter 0 of 1 is a null pointer"));
}

// The other functions that take a list of parameters read each one: a null pointer in the
// list was a segmentation fault (found by an attack), where the optimizers name it.
TEST_CASE("clip_grad_norm, value_and_grad and the finiteness checks refuse a null parameter, saying where",
          "[optimizers][errors]") {
    Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "p");
    p.grad = Matrix<double>{{3.0, 4.0}};
    const std::vector<Parameter<double>*> listed{&p, nullptr};
    REQUIRE_THROWS_WITH(nn::clip_grad_norm(listed, 1.0), Contains("clip_grad_norm: parameter 1 of 2 is a null pointer"));
    REQUIRE((p.grad == Matrix<double>{{3.0, 4.0}}));  // refused before anything was scaled
    autodiff::Tape<double> tape;
    REQUIRE_THROWS_WITH(
        autodiff::value_and_grad<double>(tape, [&](autodiff::Tape<double>& t) { return autodiff::sum(t.parameter(p)); }, listed),
        Contains("value_and_grad: parameter 1 of 2 is a null pointer"));
    REQUIRE_THROWS_WITH(nn::check_finite_parameters(listed, "model"), Contains("parameter 1 of 2 is a null pointer"));
    REQUIRE_THROWS_WITH(nn::check_finite_step(0.5, listed, {0, 0}), Contains("parameter 1 of 2 is a null pointer"));
    REQUIRE_THROWS_WITH(nn::check_finite_evaluation(NAN, listed), Contains("parameter 1 of 2 is a null pointer"));
}

// A gradient of another shape than its parameter is refused before anything is updated: an
// attack found the parameters listed before it already updated (and, by step_and_zero_grad,
// their gradients zeroed), and Adam's step count advanced.
TEST_CASE("a step refused for a gradient of another shape changes no weight, gradient or state", "[optimizers][errors]") {
    for (const std::string name : {"sgd", "sgd_wd", "momentum_wd", "adam", "adamw"}) {
        for (bool fused : {false, true}) {
            INFO(name << (fused ? ", step_and_zero_grad" : ", step"));
            Parameter<double> a(Matrix<double>{{0.5, -1.5}}, "a"), b(Matrix<double>{{2.0, 0.25}}, "b");
            const std::unique_ptr<nn::Optimizer<double>> opt = make(name, std::vector<Parameter<double>*>{&a, &b});
            a.grad = Matrix<double>{{0.1, -0.2}};
            b.grad = Matrix<double>{{0.3}};
            const auto state = opt->state();
            REQUIRE_THROWS_WITH(fused ? (void)opt->step_and_zero_grad() : opt->step(),
                                Contains("parameter 'b' is 1x2 but its gradient is 1x1"));
            REQUIRE((a.value == Matrix<double>{{0.5, -1.5}}));
            REQUIRE((a.grad == Matrix<double>{{0.1, -0.2}}));
            const auto after = opt->state();
            REQUIRE(after.size() == state.size());
            for (const auto& [key, m] : state) REQUIRE((after.at(key) == m));
        }
    }
}

// Found by an attack: an optimizer whose parameter was destroyed stepped into freed memory.
TEST_CASE("an optimizer whose parameter was destroyed or moved from refuses to step, naming it", "[optimizers]") {
    autodiff::Parameter<double> kept(Matrix<double>{{1.0}});
    auto gone = std::make_unique<autodiff::Parameter<double>>(Matrix<double>{{2.0}});
    nn::Adam<double> adam({&kept, gone.get()}, 0.1);
    gone.reset();
    CHECK_THROWS_WITH(adam.step(), Contains("adam: parameter 1 of 2 was destroyed or moved from"));
    CHECK_THROWS_WITH(adam.step_and_zero_grad(), Contains("parameter 1 of 2"));
    CHECK_THROWS_WITH(adam.zero_grad(), Contains("parameter 1 of 2"));
    CHECK(kept.value(0, 0) == 1.0);  // nothing stepped

    autodiff::Parameter<double> moved(Matrix<double>{{3.0}});
    nn::SGD<double> sgd({&moved}, 0.1);
    const autodiff::Parameter<double> elsewhere(std::move(moved));
    CHECK_THROWS_WITH(sgd.step(), Contains("sgd: parameter 0 of 1 was destroyed or moved from"));
}

// Found by an attack: after a parameter was resized by hand, load_state compared the state
// with the optimizer's old arrays: state of the parameter's new shape was refused ("its
// parameter is 2x2", which it no longer was), and state of its old shape taken, for the next
// step to refuse.
TEST_CASE("load_state takes the state of a parameter's shape as it is now, and refuses another", "[optimizers]") {
    Parameter<double> W(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}}, "W");
    nn::Adam<double> adam({&W}, 0.1);
    nn::Momentum<double> momentum({&W}, 0.1);
    W.value = Matrix<double>{{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}};  // a layer grown by hand
    W.zero_grad();
    const Matrix<double> zeros32 = xt::zeros<double>({3, 2}), zeros22 = xt::zeros<double>({2, 2});
    const Matrix<double> steps{{4.0}};
    CHECK_THROWS_WITH(adam.load_state({{"m.0", zeros22}, {"v.0", zeros22}, {"steps", steps}}),
                      Contains("adam: state 'm.0' is 2x2 but its parameter 'W' is 3x2"));
    CHECK_THROWS_WITH(momentum.load_state({{"velocity.0", zeros22}}),
                      Contains("momentum: state 'velocity.0' is 2x2 but its parameter 'W' is 3x2"));
    adam.load_state({{"m.0", zeros32}, {"v.0", zeros32}, {"steps", steps}});
    momentum.load_state({{"velocity.0", zeros32}});
    W.grad = Matrix<double>{{1.0, 1.0}, {1.0, 1.0}, {1.0, 1.0}};
    momentum.step();  // 0.1 * velocity 1
    CHECK((W.value == Matrix<double>{{0.9, 1.9}, {2.9, 3.9}, {4.9, 5.9}}));
    CHECK_NOTHROW(adam.step());
    CHECK(adam.state().at("m.0").shape()[0] == 3);
}
