// nn::Module: hierarchical names, registration checks, modes, buffers.

#include <deque>
#include <memory>
#include <new>
#include <string>

#include <catch2/catch.hpp>

#include "nn/activation_layer.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/sequential.hpp"

using Catch::Matchers::Contains;
using autodiff::Matrix;

namespace {

struct Block : nn::Module<double> {
    nn::Linear<double> conv{3, 3, 1};
    Matrix<double>& running = this->add_buffer("running", xt::zeros<double>({3, 1}));
    Block() { register_modules({{"conv", conv}}); }
    autodiff::Var<double> forward(autodiff::Var<double> x) override { return conv(x); }
};

struct Net : nn::Module<double> {
    nn::Linear<double> encoder{4, 3, 2};
    Block block1, block2;
    autodiff::Parameter<double>& scale = this->add_parameter("scale", xt::ones<double>({1, 1}));
    Net() { register_modules({{"encoder", encoder}, {"block1", block1}, {"block2", block2}}); }
    autodiff::Var<double> forward(autodiff::Var<double> x) override { return block2(block1(encoder(x))); }
};

std::vector<std::string> names(nn::Module<double>& m) {
    std::vector<std::string> out;
    for (const auto& p : m.named_parameters()) out.push_back(p.name);
    return out;
}

}  // namespace

TEST_CASE("a model lists its parameters recursively under hierarchical names", "[module]") {
    Net net;
    REQUIRE(names(net) == std::vector<std::string>{"scale", "encoder.W", "encoder.b", "block1.conv.W",
                                                    "block1.conv.b", "block2.conv.W", "block2.conv.b"});
    // The Parameter objects carry their full names, for the optimizers' and the tape's messages.
    REQUIRE(net.block2.conv.W.name == "block2.conv.W");
    REQUIRE(net.block2.conv.name() == "block2.conv");
    REQUIRE(net.parameters().size() == 7);
    REQUIRE(net.parameters()[1] == &net.encoder.W);
    REQUIRE(net.parameter_count() == 1 + 4 * 3 + 3 + 2 * (9 + 3));
    std::vector<std::string> buffers;
    for (const auto& b : net.named_buffers()) buffers.push_back(b.name);
    REQUIRE(buffers == std::vector<std::string>{"block1.running", "block2.running"});
    std::vector<std::string> modules;
    for (const auto& m : net.named_modules()) modules.push_back(m.name);
    REQUIRE(modules == std::vector<std::string>{"encoder", "block1", "block1.conv", "block2", "block2.conv"});
    REQUIRE_THAT(net.summary(), Contains("block1.conv: Linear(3, 3)  W 3x3  b 3x1"));
}

TEST_CASE("an MLP is a module of Linear layers and activations", "[module]") {
    nn::MLP<double> net({5, 10, 10, 4}, nn::Activation::relu, nn::Init::notebook, 1);
    std::vector<std::string> expected{"layer1.W", "layer1.b", "layer2.W", "layer2.b", "layer3.W", "layer3.b"};
    REQUIRE(names(net) == expected);
    REQUIRE(net.describe() == "MLP(5-10-10-4, relu)");
    std::vector<std::string> modules;
    for (const auto& m : net.named_modules()) modules.push_back(m.name + "=" + m.item->describe());
    REQUIRE(modules == std::vector<std::string>{"layer1=Linear(5, 10)", "act1=ReLU()", "layer2=Linear(10, 10)",
                                                "act2=ReLU()", "layer3=Linear(10, 4)"});
}

TEST_CASE("Sequential names its steps 0, 1, ... and runs them in order", "[module]") {
    nn::Sequential<double> seq;
    seq.add<nn::Linear<double>>(2, 3, 0u);
    seq.add<nn::ReLU<double>>();
    seq.add<nn::Linear<double>>(3, 1, 1u);
    REQUIRE(names(seq) == std::vector<std::string>{"0.W", "0.b", "2.W", "2.b"});
    REQUIRE(seq.describe() == "Sequential(0=Linear(2, 3), 1=ReLU(), 2=Linear(3, 1))");
    autodiff::Tape<double> tape;
    auto y = seq(tape.constant(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}}));
    REQUIRE(y.shape() == autodiff::Shape{1, 2});
    REQUIRE_THROWS_WITH(seq(tape.constant(Matrix<double>{{1.0, 2.0}})),
                        Contains("0 (Linear(2, 3)): its input is 1x2 but it takes 2 features"));
    REQUIRE(seq[2].describe() == "Linear(3, 1)");
    REQUIRE_THROWS_WITH(seq[3], Contains("Sequential") && Contains("no step 3, it has 3"));
}

TEST_CASE("train() and eval() reach every descendant", "[module]") {
    Net net;
    REQUIRE(net.block2.conv.is_training());
    net.eval();
    REQUIRE_FALSE(net.is_training());
    REQUIRE_FALSE(net.block2.conv.is_training());
    net.train();
    REQUIRE(net.block1.conv.is_training());
}

TEST_CASE("a parameter used but not registered is reported by name", "[module]") {
    struct Forgetful : nn::Module<double> {
        nn::Linear<double> registered{2, 2, 0};
        autodiff::Parameter<double> forgotten{xt::ones<double>({2, 1}), "forgotten_bias"};
        Forgetful() { register_modules({{"registered", registered}}); }
        autodiff::Var<double> forward(autodiff::Var<double> x) override {
            return registered(x) + x.tape().parameter(forgotten);
        }
    } model;
    autodiff::Tape<double> tape;
    model(tape.constant(xt::ones<double>({2, 3})));
    REQUIRE_THROWS_WITH(nn::check_registered(tape, model),
                        Contains("'forgotten_bias' (2x1) took part in the computation but are not registered"));
}

TEST_CASE("registration refuses bad and duplicate names, and double registration", "[module]") {
    struct Bad : nn::Module<double> {
        nn::Linear<double> a{1, 1, 0};
        void add(const std::string& name) { register_module(name, a); }
        void param(const std::string& name) { add_parameter(name, xt::zeros<double>({1, 1})); }
    } bad;
    REQUIRE_THROWS_WITH(bad.add("a.b"), Contains("cannot register 'a.b'"));
    REQUIRE_THROWS_WITH(bad.add(""), Contains("cannot register ''"));
    // Reserved by checkpoints (found by an attack: refused only at the save, or the arrays of a
    // module named 'optimizer' taken for optimizer state).
    REQUIRE_THROWS_WITH(bad.param("manifest"), Contains("cannot register 'manifest': the name is reserved by checkpoints"));
    REQUIRE_THROWS_WITH(bad.add("optimizer"), Contains("cannot register 'optimizer': the name is reserved"));
    // Each name within 64 characters, but a nesting whose full name is longer than a checkpoint
    // takes (239): refused at registration, not by the save after training (found by attacks).
    struct Deep : nn::Module<double> {
        explicit Deep(Deep* inner) {
            if (inner) register_module(std::string(58, 'd'), *inner);
            else add_parameter(std::string(58, 'p'), xt::zeros<double>({1, 1}));
        }
    };
    Deep d0(nullptr), d1(&d0), d2(&d1), d3(&d2);  // 58 + 3 x 59 = 235 characters
    CHECK(d3.named_parameters().front().name.size() == 235);
    REQUIRE_THROWS_WITH(Deep(&d3), Contains("it makes a full name of 294 characters"));
    bad.param("x");
    REQUIRE_THROWS_WITH(bad.param("x"), Contains("the name 'x' is registered already"));
    bad.add("first");
    REQUIRE_THROWS_WITH(bad.add("second"), Contains("registered already as 'first'"));
}

TEST_CASE("a module without forward says so", "[module]") {
    struct NoForward : nn::Module<double> {
    } m;
    autodiff::Tape<double> tape;
    REQUIRE_THROWS_WITH(m(tape.constant(xt::ones<double>({1, 1}))), Contains("does not define forward"));
}

TEST_CASE("zero_grad clears every parameter of the tree", "[module]") {
    Net net;
    autodiff::Tape<double> tape;
    tape.backward(autodiff::sum(net(tape.constant(xt::ones<double>({4, 2})))));
    REQUIRE(xt::any(xt::not_equal(net.encoder.W.grad, 0.0)));
    net.zero_grad();
    for (auto* p : net.parameters()) REQUIRE(xt::all(xt::equal(p->grad, 0.0)));
}

TEST_CASE("a child that outlives its parent may be registered again; one destroyed first leaves the parent",
          "[module]") {
    // It kept a pointer to the destroyed parent: "registered already", and a cycle check
    // through it read freed memory.
    nn::Sequential<double> mid;
    nn::Linear<double> leaf(2, 2, 0u);
    {
        nn::Sequential<double> outer;
        outer.append("m", mid);
    }
    mid.append("l", leaf);
    nn::Sequential<double> again;
    again.append("m2", mid);
    REQUIRE(names(again) == std::vector<std::string>{"m2.l.W", "m2.l.b"});
    {
        nn::Linear<double> short_lived(2, 2, 1u);
        again.append("short", short_lived);
    }
    REQUIRE(names(again) == std::vector<std::string>{"m2.l.W", "m2.l.b"});
}

// Children destroyed first leave null places that the next read sweeps out (erasing each at
// once made destroying a model of 30,000 layers take 2.3 s): departures from the front, with
// reads between them, keep the rest in order and free their names.
TEST_CASE("children destroyed first, from the front and between reads, leave the rest in order", "[module]") {
    struct Wide : nn::Module<double> {
        std::deque<nn::Linear<double>> children;
        void add(const std::string& name) { register_module(name, children.emplace_back(1, 1, 0u)); }
        bool has(const std::string& name, const nn::Module<double>& m) const { return has_child(name, m); }
    } wide;
    for (int i = 0; i < 6; ++i) wide.add("c" + std::to_string(i));
    const nn::Module<double>* last = &wide.children.back();
    wide.children.pop_front();
    wide.children.pop_front();
    CHECK(wide.named_modules().size() == 4);  // a read: the departed are swept out
    wide.children.pop_front();
    const std::uint64_t before = wide.version();
    wide.children.pop_front();
    CHECK(wide.version() > before);
    CHECK(names(wide) == std::vector<std::string>{"c4.W", "c4.b", "c5.W", "c5.b"});
    CHECK(wide.has("c5", *last));
    CHECK_FALSE(wide.has("c4", *last));
    wide.add("c0");  // a departed child's name is free again
    CHECK(names(wide) == std::vector<std::string>{"c4.W", "c4.b", "c5.W", "c5.b", "c0.W", "c0.b"});
    CHECK_THROWS_WITH(wide.add("c5"), Contains("the name 'c5' is registered already"));
    wide.children.pop_back();  // the refused one, never registered
    wide.children.pop_back();  // c0
    wide.children.pop_back();  // c5: its place was renumbered by the sweep (5 -> 1)
    CHECK(names(wide) == std::vector<std::string>{"c4.W", "c4.b"});
}

// Found by an attack: a Sequential kept its own list of the modules given to append(), which
// ~Module never updated, so a step destroyed first was run from freed memory.
TEST_CASE("a Sequential whose appended step was destroyed first refuses to run, naming it", "[module]") {
    nn::Sequential<double> seq;
    seq.add<nn::Linear<double>>(2, 2);
    {
        nn::Linear<double> extra(2, 2);
        seq.append("extra", extra);
        CHECK(seq.named_parameters().size() == 4);
    }
    CHECK(seq.named_parameters().size() == 2);  // the child list forgot it
    autodiff::Tape<double> tape;
    const autodiff::Var<double> x = tape.constant(Matrix<double>{{1.0}, {2.0}});
    CHECK_THROWS_WITH(seq(x), Contains("step 'extra' was destroyed before the Sequential"));
    CHECK_THROWS_WITH(seq[1], Contains("step 'extra'"));  // indexing any step: the Sequential is broken
}

// Found by an attack: a child that outlived its parent kept the path it had under it
// ("outer.block.conv.W"), naming a model gone in its errors and its saved optimizer state.
TEST_CASE("a child that outlives its parent is named again as before it was registered", "[module]") {
    Block block;
    nn::Linear<double> named(Matrix<double>{{1.0}}, Matrix<double>{{0.0}}, "fc1");  // a default name of its own
    {
        struct Outer : nn::Module<double> {
            Outer(Block& b, nn::Linear<double>& l) { register_modules({{"block", b}, {"fc", l}}); }
        } outer(block, named);
        CHECK(block.conv.W.name == "block.conv.W");
        CHECK(named.W.name == "fc.W");
    }
    const Block fresh;
    CHECK(block.name() == fresh.name());
    CHECK(block.who() == fresh.who());
    CHECK(block.conv.name() == "conv");
    CHECK(block.conv.W.name == fresh.conv.W.name);
    CHECK(named.name() == "fc1");
    CHECK(named.W.name == "fc1.W");
}

// Found by an attack: a step destroyed first freed its name, and the next module appended
// under it, built at the freed address (as malloc gives it back), passed for both steps: the
// Sequential ran it twice, silently.
TEST_CASE("a Sequential refuses a step appended after another was destroyed, even at its address", "[module]") {
    nn::Sequential<double> seq;
    alignas(nn::Linear<double>) unsigned char storage[sizeof(nn::Linear<double>)];
    auto* first = new (storage) nn::Linear<double>(2, 2, 1);
    seq.append("head", *first);
    first->~Linear();
    auto* second = new (storage) nn::Linear<double>(2, 2, 1);  // the same address
    CHECK_THROWS_WITH(seq.append("head", *second), Contains("step 'head' was destroyed before the Sequential"));
    CHECK(seq.size() == 1);
    CHECK(seq.named_parameters().empty());  // the refused one was not registered
    second->~Linear();
}

// Found by an attack: a parameter registered from elsewhere and destroyed before its module
// was read in freed memory by parameters(), zero_grad() and a save.
TEST_CASE("a parameter registered from elsewhere and destroyed first is named, not read", "[module]") {
    struct Holder : nn::Module<double> {
        explicit Holder(autodiff::Parameter<double>& p) { register_parameter("shared", p); }
    };
    auto p = std::make_unique<autodiff::Parameter<double>>(Matrix<double>{{1.0, 2.0}});
    Holder holder(*p);
    CHECK(holder.parameters().size() == 1);
    p.reset();
    for (auto* read : {+[](Holder& h) { h.parameters(); }, +[](Holder& h) { h.zero_grad(); },
                       +[](Holder& h) { h.summary(); }})
        CHECK_THROWS_WITH(read(holder), Contains("parameter 'shared' (registered with register_parameter) was destroyed"));
    // A parent registering the holder afterwards renames nothing that is gone.
    struct Parent : nn::Module<double> {
        explicit Parent(Holder& h) { register_modules({{"holder", h}}); }
    };
    CHECK_NOTHROW(Parent(holder));
}
