// The tape against misuse that used to read freed memory or give silent wrong answers
// (issue 10, items 4, 5, 16): parameters destroyed, moved or changed in place after they were
// recorded, an op that throws half way through its recording, and evaluation loops that
// record under NoGrad without ever calling reset().
#include <catch2/catch.hpp>

#include <utility>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "autodiff/custom_op.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;

namespace {
Matrix<double> M(std::initializer_list<std::initializer_list<double>> rows) { return Matrix<double>(rows); }
}  // namespace

TEST_CASE("a parameter destroyed after it was recorded: backward and Var::value throw", "[tape][parameter]") {
    Tape<double> tape;
    Var<double> w_handle, loss;
    {
        Parameter<double> w(M({{2.0, 3.0}}), "w");
        w_handle = tape.parameter(w);
        loss = sum(w_handle * tape.constant(M({{5.0, 7.0}})));
    }
    CHECK_THROWS_WITH(tape.backward(loss), Contains("destroyed or moved from") && Contains("1x2"));
    CHECK_THROWS_WITH(w_handle.value(), Contains("destroyed or moved from"));
    CHECK_THROWS_WITH(w_handle.grad(), Contains("destroyed or moved from"));
}

TEST_CASE("a parameter moved from after it was recorded: backward throws, recording it throws", "[tape][parameter]") {
    Tape<double> tape;
    Parameter<double> w(M({{2.0}}), "w");
    Var<double> loss = sum(tape.parameter(w) * tape.constant(M({{5.0}})));
    Parameter<double> moved(std::move(w));
    CHECK_THROWS_WITH(tape.backward(loss), Contains("destroyed or moved from"));
    tape.reset();
    CHECK_THROWS_WITH(tape.parameter(w), Contains("this Parameter was moved from"));

    // The parameter it moved into is a parameter like any other.
    tape.backward(sum(tape.parameter(moved) * tape.constant(M({{5.0}}))));
    CHECK(moved.grad(0, 0) == 5.0);
}

TEST_CASE("a parameter kept in a vector that reallocates is caught, not read after free", "[tape][parameter]") {
    std::vector<Parameter<double>> params;
    params.emplace_back(M({{1.0}}), "a");
    Tape<double> tape;
    Var<double> loss = sum(tape.parameter(params[0]) * tape.constant(M({{2.0}})));
    for (int k = 0; k < 8; ++k) params.emplace_back(M({{1.0}}), "more");  // moves params[0]
    CHECK_THROWS_WITH(tape.backward(loss), Contains("destroyed or moved from"));
}

TEST_CASE("a parameter changed in place between forward and backward is detected by its version",
          "[tape][parameter]") {
    Parameter<double> w(M({{2.0}}), "w");
    Tape<double> tape;
    Var<double> loss = sum(tape.parameter(w) * tape.parameter(w));
    w.value(0, 0) = 4.0;  // as an optimizer does
    w.bump_version();
    CHECK_THROWS_WITH(tape.backward(loss), Contains("'w'") && Contains("modified in place after it was recorded"));

    SECTION("assigning a whole new parameter counts as a change too") {
        tape.reset();
        loss = sum(tape.parameter(w) * tape.parameter(w));
        w = Parameter<double>(M({{1.0}}), "w");
        CHECK_THROWS_WITH(tape.backward(loss), Contains("modified in place"));
    }
    SECTION("recorded again, it is fine") {
        tape.reset();
        tape.backward(sum(tape.parameter(w) * tape.parameter(w)));
        CHECK(w.grad(0, 0) == 8.0);
    }
}

TEST_CASE("an op that throws while it records leaves the tape as it was", "[tape][exceptions]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1.0, 2.0}}));
    const std::size_t before = tape.size();
    auto throwing = [](Node<double>&) { throw Error("boom"); };
    CHECK_THROWS_WITH(tape.record("throwing", {x}, Shape{1, 2}, nullptr, throwing), Contains("boom"));
    CHECK(tape.size() == before);
    Var<double> y = x * x;  // the entry it left is reused, whole
    tape.backward(sum(y));
    CHECK((x.grad() == M({{2.0, 4.0}})));
}

TEST_CASE("an evaluation loop under NoGrad that never resets holds only what it refers to", "[tape][nograd]") {
    Parameter<double> w(M({{0.5}, {0.25}}), "w");
    Tape<double> tape;
    NoGrad<double> no_grad(tape);
    double total = 0;
    Var<double> state = tape.constant(M({{0.0}, {0.0}}));
    for (int step = 0; step < 10000; ++step) {  // no reset(): the mistake of issue 10, item 16
        Var<double> x = tape.constant(M({{1.0}, {double(step % 3)}}));
        state = tanh(state * tape.parameter(w) + x);
        total += sum(state).value()(0, 0);
    }
    CHECK(total > 0);
    CHECK(tape.size() < 20);  // entries are reused once no handle refers to them
    CHECK(tape.live_entries() <= 3);  // state (and the constant it started from was released)
    CHECK(tape.recorded_bytes() <= 2 * 2 * sizeof(double));
}

TEST_CASE("a NoGrad value read by a recorded op stays while the tape needs it", "[tape][nograd]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1.0, 2.0}}));
    Var<double> y;
    {
        Var<double> c;
        {
            NoGrad<double> off(tape);
            c = exp(tape.constant(M({{0.0, 1.0}})));
        }
        y = sum(x * c);
    }  // c's last handle is gone, but the product's backward reads it
    {
        NoGrad<double> off(tape);
        for (int k = 0; k < 10; ++k) tape.constant(M({{9.0, 9.0}}));  // would reuse c's entry
    }
    tape.backward(y);
    CHECK_THAT(x.grad()(0, 0), Catch::Matchers::WithinAbs(1.0, 1e-15));
    CHECK_THAT(x.grad()(0, 1), Catch::Matchers::WithinAbs(std::exp(1.0), 1e-15));
}

// Found by an attack: backward checked the gradient's shape of a parameter recorded under
// NoGrad as well, and refused one of another shape, although no gradient reaches it.
TEST_CASE("backward leaves alone the gradient of a parameter recorded under NoGrad", "[tape][nograd]") {
    Parameter<double> frozen(M({{2.0, 3.0}}), "frozen");
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1.0, 2.0}}));
    Var<double> w;
    {
        NoGrad<double> off(tape);
        w = tape.parameter(frozen);
    }
    Var<double> y = sum(x * w);
    frozen.grad = M({{7.0}});  // another shape, left from elsewhere
    tape.backward(y);
    CHECK(x.grad()(0, 0) == 2.0);
    CHECK(x.grad()(0, 1) == 3.0);
    CHECK((frozen.grad == M({{7.0}})));
}

TEST_CASE("a tape that keeps growing past its memory limit throws, saying why", "[tape][nograd]") {
    Tape<double> tape;
    CHECK(tape.memory_limit() == Tape<double>::default_memory_limit);
    tape.set_memory_limit(1 << 20);
    const Matrix<double> batch = xt::ones<double>({std::size_t(100), std::size_t(100)});  // 80 KB
    std::vector<Var<double>> kept;  // handles kept: the values must stay
    NoGrad<double> no_grad(tape);
    auto evaluate = [&] {
        for (int b = 0; b < 20; ++b) kept.push_back(relu(tape.constant(batch)));
    };
    CHECK_THROWS_WITH(evaluate(), Contains("past its limit of 1 MiB") && Contains("reset()") &&
                                      Contains("set_memory_limit"));
    CHECK(tape.recorded_bytes() <= (1u << 20));
    tape.set_memory_limit(0);  // no limit
    evaluate();
    CHECK(tape.recorded_bytes() > (1u << 20));
}

// Found by an attack: a declared shape of nearly 2^64 bytes (it fits in size_t) wrapped the
// limit's sum around to a small number, and the allocation then threw std::bad_alloc.
TEST_CASE("a shape of nearly 2^64 bytes is refused by the memory limit, not by the allocator", "[tape]") {
    Tape<double> tape;
    const Var<double> x = tape.leaf(Matrix<double>({1, 1}, 1.0));
    const std::size_t rows = (std::size_t(1) << 61) - 1;  // rows * 8 = 2^64 - 8
    CHECK_THROWS_WITH(tape.record("huge", {x}, {rows, 1}, nullptr, [](Node<double>&) {}),
                      Contains("huge") && Contains("past its limit of 1024 MiB"));
    CHECK(tape.size() == 1);
    // The message's rounding up to whole MiB wrapped near 2^64 ("hold 0 MiB"): found by a second attack.
    tape.set_memory_limit(std::size_t(1) << 20);
    CHECK_THROWS_WITH(tape.record("huge", {x}, {rows, 1}, nullptr, [](Node<double>&) {}),
                      Contains("hold 17592186044416 MiB") && Contains("past its limit of 1 MiB"));
}

TEST_CASE("a parameter moved from and then assigned to is a parameter again: std::swap works", "[tape][parameter]") {
    Parameter<double> a(M({{1.0}}), "a"), b(M({{2.0}}), "b");
    std::swap(a, b);  // moves from a, then assigns to it
    Tape<double> tape;
    tape.backward(sum(tape.parameter(a) * tape.parameter(b)));
    CHECK(a.name == "b");
    CHECK(a.grad(0, 0) == 1.0);  // d(a b)/da = b = 1
    CHECK(b.grad(0, 0) == 2.0);

    Parameter<double> x(M({{3.0}}), "x");
    Parameter<double> y(std::move(x));
    x = Parameter<double>(M({{4.0}}), "x again");  // move-assigned
    Parameter<double> z(M({{5.0}}), "z");
    Parameter<double> w(std::move(z));
    z = w;  // copy-assigned
    tape.reset();
    tape.backward(sum(tape.parameter(x) * tape.parameter(z)));
    CHECK(x.grad(0, 0) == 5.0);
    CHECK(z.grad(0, 0) == 4.0);
}

TEST_CASE("constant_refs recorded under NoGrad are not listed for backward's checks until a recorded op reads one",
          "[tape][nograd]") {
    // Listed at once, an evaluation loop grew the list by one per constant_ref, and the index
    // stayed after the entry was reused: here by a NoGrad parameter, whose stale version then
    // made a valid backward throw.
    const Matrix<double> X = M({{1.0}});
    Parameter<double> p(M({{3.0}}), "p");
    Tape<double> tape;
    Var<double> held;
    {
        NoGrad<double> no_grad(tape);
        for (int k = 0; k < 3; ++k) Var<double> v = tape.constant_ref(X);
        held = tape.parameter(p);
    }
    p.bump_version();
    tape.backward(sum(tape.parameter(p) * tape.parameter(p)));
    CHECK(p.grad(0, 0) == 6.0);

    // One read by a recorded op is listed then, and checked.
    Matrix<double> Z = M({{2.0}});
    tape.reset();
    Var<double> z;
    {
        NoGrad<double> no_grad(tape);
        z = tape.constant_ref(Z);
    }
    Var<double> loss = sum(z * tape.parameter(p));
    Z = M({{2.0, 2.0}});
    CHECK_THROWS_WITH(tape.backward(loss), Contains("constant_ref was 1x1 when recorded"));
}

TEST_CASE("a parameter whose grad was replaced by another shape is refused at backward, not indexed out of bounds",
          "[tape][parameter]") {
    Parameter<double> b(M({{0.0}, {0.0}}), "b");
    Tape<double> tape;
    Var<double> loss = sum(tape.constant(M({{1.0, 2.0}, {3.0, 4.0}})) + tape.parameter(b));
    b.grad = M({{0.0, 0.0}, {0.0, 0.0}});  // 2x2 for a 2x1 parameter
    CHECK_THROWS_WITH(tape.backward(loss), Contains("parameter 'b'") && Contains("2x1 but its grad is 2x2"));

    // An emptied grad is a gradient not started: it is given the parameter's shape.
    tape.reset();
    loss = sum(tape.constant(M({{1.0, 2.0}, {3.0, 4.0}})) + tape.parameter(b));
    b.grad = Matrix<double>();
    tape.backward(loss);
    CHECK((b.grad == M({{2.0}, {2.0}})));
}

TEST_CASE("the memory limit counts the entries too, which a loop of 1x1 ops fills faster than values",
          "[tape][nograd]") {
    // 300,000 parameter and constant_ref entries held ~100 MB while the limit of 1 MiB saw 0 bytes.
    Parameter<double> p(M({{1.0}}), "p");
    const Matrix<double> c = M({{2.0}});
    Tape<double> tape;
    tape.set_memory_limit(1 << 20);
    const auto grow = [&] {
        for (int k = 0; k < 300000; ++k) {
            tape.parameter(p);
            tape.constant_ref(c);
        }
    };
    CHECK_THROWS_WITH(grow(), Contains("values and entries") && Contains("past its limit of 1 MiB"));
    CHECK(tape.live_entries() * sizeof(Node<double>) <= (1u << 20));
    tape.reset();
    tape.set_memory_limit(100);  // below a MiB the message says bytes, not "1 MiB past a limit of 1 MiB"
    CHECK_THROWS_WITH(tape.constant(M({{1.0}})), Contains("past its limit of 100 bytes"));
}

TEST_CASE("anomaly detection blames a non-finite seed or an earlier step's gradient, not the first op it meets",
          "[tape][anomaly]") {
    Tape<double> tape;
    tape.set_detect_anomaly(true);
    Var<double> a = tape.leaf(M({{0.5}}));
    CHECK_THROWS_WITH(tape.backward(a, M({{std::nan("")}})), Contains("seed given to backward holds nan"));
    tape.reset();
    Parameter<double> p(M({{0.5}}), "p");
    p.grad(0, 0) = std::nan("");  // left over from an earlier step
    CHECK_THROWS_WITH(tape.backward(sum(exp(tape.parameter(p)))),
                      Contains("parameter 'p'") && Contains("before this backward"));
}

TEST_CASE("a recorded forward that leaves a value of another shape is refused, naming the op and both shapes",
          "[tape][exceptions]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}));
    const std::size_t before = tape.size();
    auto shrinks = [](Node<double>& n) { n.value = Matrix<double>::from_shape({0, 3}); };
    CHECK_THROWS_WITH(tape.record("shrinks", {x}, Shape{2, 3}, nullptr, shrinks),
                      Contains("shrinks") && Contains("0x3") && Contains("2x3"));
    CHECK(tape.size() == before);  // and a later op cannot read its empty value (it read a null pointer)
    auto grows = [](Node<double>& n) { n.value = Matrix<double>::from_shape({3, 3}); };
    CHECK_THROWS_WITH(tape.record("grows", {x}, Shape{2, 3}, nullptr, grows), Contains("3x3"));
}

TEST_CASE("an op that records on its own tape from inside its forward is told so", "[tape][exceptions]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1.0, 2.0}}));
    auto nested = [&](Node<double>&) { (void)(x * x); };
    CHECK_THROWS_WITH(tape.record("nested", {x}, Shape{1, 2}, nullptr, nested),
                      Contains("from inside one of its own recordings or sweeps"));
}

namespace {
Tape<double>* tape_of_nested_op = nullptr;
// A custom op whose forward records on the tape it runs on.
struct RecordsOnItsTape {
    static constexpr const char* name = "records_on_its_tape";
    template <class T>
    static Matrix<T> forward(OpContext<T>&, const Matrix<T>& x) {
        const Var<T> c = tape_of_nested_op->constant(Matrix<T>{{1.0, 2.0}});
        (void)(c * c);
        return x;
    }
    template <class T>
    static Matrix<T> backward(const GradContext<T>& ctx, int) {
        return ctx.grad_output();
    }
};
}  // namespace

// apply() ran Op::forward while the op held the tape as this thread's (and before that,
// before it took the tape at all): the records inside it landed on the tape, silently, in the
// middle of the op's recording (an attack). Refused now, and the tape is as it was.
TEST_CASE("a custom op whose forward records on its own tape is told so, leaving the tape as it was",
          "[tape][exceptions]") {
    Tape<double> tape;
    tape_of_nested_op = &tape;
    const Var<double> x = tape.leaf(M({{1.0, 2.0}}));
    CHECK_THROWS_WITH(apply<RecordsOnItsTape>(x), Contains("from inside one of its own recordings or sweeps"));
    CHECK(tape.size() == 1);
    tape.backward(sum(x * x));
    CHECK((x.grad() == M({{2.0, 4.0}})));
}

// where() with a mask given as a matrix recorded the mask before checking the shapes: a refused
// call left a constant on the tape (an attack; a failed recording leaves nothing behind).
TEST_CASE("where with a matrix mask, refused for its shapes, records nothing", "[tape][exceptions]") {
    Tape<double> tape;
    const Var<double> a = tape.leaf(Matrix<double>(xt::ones<double>({2, 3})));
    const Var<double> b = tape.leaf(Matrix<double>(xt::ones<double>({3, 2})));
    const Matrix<double> mask = xt::ones<double>({2, 3});
    CHECK_THROWS_WITH(autodiff::where(mask, a, b), Contains("where") && Contains("do not broadcast"));
    CHECK_THROWS_WITH(autodiff::where(Matrix<double>(xt::ones<double>({3, 3})), a, a), Contains("mask (3x3) does not broadcast"));
    CHECK(tape.size() == 2);
}

namespace {
Tape<double>* tape_of_hook = nullptr;
// A gradient-ready hook that turns anomaly detection on, from inside the sweep calling it.
void changes_a_setting(void*, Parameter<double>&) { tape_of_hook->set_detect_anomaly(true); }
// One that calls value_and_grad on the tape it is called from.
void calls_value_and_grad(void* parameter, Parameter<double>&) {
    auto& p = *static_cast<Parameter<double>*>(parameter);
    value_and_grad(*tape_of_hook, [&](Tape<double>& t) { return sum(t.parameter(p)); }, {&p});
}
}  // namespace

// A setting changed half way through a sweep would apply to part of it (anomaly detection, or
// accumulation into the parameters for the later half only): refused, as recording on the
// tape from inside an op's forward or backward is. No hook of nn/ changes a setting.
TEST_CASE("a gradient-ready hook that changes a setting of the tape sweeping is refused, naming the setter",
          "[tape][hook]") {
    Tape<double> tape;
    tape_of_hook = &tape;
    Parameter<double> p(M({{3.0}}), "p");
    tape.set_gradient_ready_hook(&changes_a_setting, nullptr);
    CHECK_THROWS_WITH(tape.backward(sum(tape.parameter(p) * tape.parameter(p))),
                      Contains("Tape::set_detect_anomaly:") && Contains("from inside one of its own recordings or sweeps"));
    CHECK_FALSE(tape.detect_anomaly());
    tape.set_gradient_ready_hook(nullptr, nullptr);  // outside a sweep, the setters work
    tape.set_detect_anomaly(true);
    CHECK(tape.detect_anomaly());
}

// value_and_grad puts the accumulation setting back in a destructor; the setter now throws
// from inside a sweep, and a throw there would end the program (std::terminate).
TEST_CASE("value_and_grad called from inside a sweep of its tape throws, and leaves accumulation as the sweep has it",
          "[tape][hook]") {
    Tape<double> tape;
    tape_of_hook = &tape;
    Parameter<double> p(M({{3.0}}), "p");
    tape.set_gradient_ready_hook(&calls_value_and_grad, &p);
    CHECK_THROWS_WITH(tape.backward(sum(tape.parameter(p) * tape.parameter(p))),
                      Contains("reset") && Contains("from inside one of its own recordings or sweeps"));
    CHECK(tape.accumulate_into_parameters());
}

TEST_CASE("value_and_grad puts accumulation back however it ends", "[tape]") {
    Tape<double> tape;
    Parameter<double> p(M({{3.0}}), "p");
    const auto square = [&](Tape<double>& t) { return sum(t.parameter(p) * t.parameter(p)); };
    CHECK(value_and_grad(tape, square, {&p}).grads.at(0)(0, 0) == 6.0);
    CHECK(tape.accumulate_into_parameters());
    CHECK_THROWS_WITH(value_and_grad(tape, [](Tape<double>&) -> Var<double> { throw Error("f failed"); }, {&p}),
                      Contains("f failed"));
    CHECK(tape.accumulate_into_parameters());
    tape.set_accumulate_into_parameters(false);  // and off, if the caller had it off
    CHECK(value_and_grad(tape, square, {&p}).grads.at(0)(0, 0) == 6.0);
    CHECK_FALSE(tape.accumulate_into_parameters());
    {
        NoGrad<double> held(tape);  // the caller's own scope holds the tape: it works as without
        tape.set_accumulate_into_parameters(true);
        CHECK_THROWS_WITH(value_and_grad(tape, square, {&p}), Contains("backward"));  // nothing to differentiate
        CHECK(tape.accumulate_into_parameters());
    }
    CHECK(p.grad(0, 0) == 0.0);
}
