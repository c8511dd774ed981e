// Ops that move values without arithmetic: concat, slice, gather (embedding lookup),
// reshape, and max along an axis. Their backward sends each gradient element back to
// the place its value came from.

#include <algorithm>
#include <cmath>
#include <string>

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// Copies block (rows x cols) between a big matrix at (row0, col0) and a small one.
template <class T, class Op>
void for_block(std::size_t rows, std::size_t cols, std::size_t row0, std::size_t col0, std::size_t big_cols, Op&& op) {
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) op((row0 + i) * big_cols + col0 + j, i * cols + j);
}

// Where a part of a concat, or a slice, sits in the big matrix: its first row and column.
struct Origin {
    std::size_t row, col;
    Origin(std::uint32_t axis, std::size_t offset) : row(axis == 0 ? offset : 0), col(axis == 0 ? 0 : offset) {}
};

// ---- concat: params[0] = axis ----

template <class T>
void concat_forward(Tape<T>& tape, Node<T>& y) {
    const std::uint32_t axis = y.params()[0];
    const std::size_t big_cols = y.value.shape()[1];
    std::size_t offset = 0;
    for (int i = 0; i < y.arity; ++i) {
        const Matrix<T>& part = tape.input(y, i);
        const Origin o(axis, offset);
        const T* src = part.data();
        T* dst = y.value.data();
        for_block<T>(part.shape()[0], part.shape()[1], o.row, o.col, big_cols, [&](std::size_t b, std::size_t s) { dst[b] = src[s]; });
        offset += part.shape()[axis];
    }
}

template <class T>
void concat_backward(Tape<T>& tape, Node<T>& y) {
    const std::uint32_t axis = y.params()[0];
    const std::size_t big_cols = y.value.shape()[1];
    const T* g = y.grad.data();
    std::size_t offset = 0;
    for (int i = 0; i < y.arity; ++i) {
        const Shape s = shape_of(tape.input(y, i));
        const Origin o(axis, offset);
        offset += axis == 0 ? s.rows : s.cols;
        if (!tape.needs_grad(y, i)) continue;
        auto sink = tape.grad_of(y, i);
        sink.accumulate_2d([&](std::size_t r, std::size_t c) { return g[(o.row + r) * big_cols + o.col + c]; });
    }
}

template <class T>
Var<T> concat_entry(Tape<T>& tape, std::initializer_list<InputRef<T>> parts, int axis) {
    Shape total = (*parts.begin())->shape();
    if (axis == 0) total.rows = 0; else total.cols = 0;
    for (const InputRef<T>& p : parts) (axis == 0 ? total.rows : total.cols) += axis == 0 ? p->rows() : p->cols();
    return ops::record_library_op(tape, "concat", parts, total, concat_forward<T>, concat_backward<T>,
                          [&](Node<T>& y) { y.params()[0] = static_cast<std::uint32_t>(axis); });
}

// ---- slice: params = {axis, begin, end}, begin and end in 64 bits (Node::param64) ----

template <class T>
void slice_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& x = tape.input(y, 0);
    const Origin o(y.params()[0], y.param64(1));
    const T* src = x.data();
    T* dst = y.value.data();
    for_block<T>(y.value.shape()[0], y.value.shape()[1], o.row, o.col, x.shape()[1], [&](std::size_t b, std::size_t s) { dst[s] = src[b]; });
}

template <class T>
void slice_backward(Tape<T>& tape, Node<T>& y) {
    auto sink = tape.grad_of(y, 0);
    // The range only; a gradient written for the first time is zero outside it.
    if (sink.overwrite) std::fill(sink.grad.begin(), sink.grad.end(), T(0));
    const Origin o(y.params()[0], y.param64(1));
    const T* g = y.grad.data();
    T* dx = sink.grad.data();
    for_block<T>(y.value.shape()[0], y.value.shape()[1], o.row, o.col, sink.grad.shape()[1], [&](std::size_t b, std::size_t s) { dx[b] += g[s]; });
}

// ---- gather: params[0] = axis, labels = ids ----

template <class T>
void gather_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& table = tape.input(y, 0);
    const std::size_t table_cols = table.shape()[1], out_cols = y.value.shape()[1];
    const std::size_t* id = y.labels().data();
    if (y.params()[0] == 1) {
        kernels::fill(y.value, [&](std::size_t i, std::size_t j) { return table.data()[i * table_cols + id[j]]; });
    } else {
        for (std::size_t r = 0; r < y.labels().size(); ++r)
            std::copy_n(table.data() + id[r] * table_cols, out_cols, y.value.data() + r * out_cols);
    }
}

template <class T>
void gather_backward(Tape<T>& tape, Node<T>& y) {
    auto sink = tape.grad_of(y, 0);
    if (sink.overwrite) std::fill(sink.grad.begin(), sink.grad.end(), T(0));
    const std::size_t table_cols = sink.grad.shape()[1], out_rows = y.value.shape()[0], out_cols = y.value.shape()[1];
    const std::size_t* id = y.labels().data();
    const T* g = y.grad.data();
    T* dtable = sink.grad.data();
    // Added, not written: an id that repeats collects the gradient of every place it was used.
    if (y.params()[0] == 1) {
        for (std::size_t i = 0; i < out_rows; ++i)
            for (std::size_t j = 0; j < out_cols; ++j) dtable[i * table_cols + id[j]] += g[i * out_cols + j];
    } else {
        for (std::size_t r = 0; r < out_rows; ++r)
            for (std::size_t c = 0; c < out_cols; ++c) dtable[id[r] * table_cols + c] += g[r * out_cols + c];
    }
}

// ---- reshape ----

template <class T>
void reshape_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& x = tape.input(y, 0);
    std::copy(x.begin(), x.end(), y.value.begin());
}

template <class T>
void reshape_backward(Tape<T>& tape, Node<T>& y) {
    const T* g = y.grad.data();
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k]; });
}

// ---- max: params[0] = axis (2: everything), labels = the flat index of each maximum ----

template <class T>
void max_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& x = tape.input(y, 0);
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    const std::uint32_t axis = y.params()[0];
    // Group g of the reduction: `count` elements at first(g) + e * stride.
    const std::size_t groups = y.value.size();
    const std::size_t count = axis == 0 ? rows : (axis == 1 ? cols : rows * cols);
    const std::size_t stride = axis == 0 ? cols : 1;
    y.labels().resize(groups);
    for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t first = axis == 0 ? g : g * cols;
        std::size_t best = first;
        for (std::size_t e = 1; e < count; ++e) {
            const std::size_t k = first + e * stride;
            const T v = x.data()[k], b = x.data()[best];
            if (v > b || (std::isnan(v) && !std::isnan(b))) best = k;  // the first maximum; NaN wins
        }
        y.labels()[g] = best;
        y.value.data()[g] = x.data()[best];
    }
}

template <class T>
void max_backward(Tape<T>& tape, Node<T>& y) {
    auto sink = tape.grad_of(y, 0);
    if (sink.overwrite) std::fill(sink.grad.begin(), sink.grad.end(), T(0));
    for (std::size_t g = 0; g < y.labels().size(); ++g) sink.grad.data()[y.labels()[g]] += y.grad.data()[g];
}

template <class T>
Var<T> max_over(const Var<T>& x, std::uint32_t axis) {
    const ops::HeldTape<T> held("max", {x});
    Tape<T>& tape = held.tape();
    const Shape s = x.shape();
    const Shape out = axis == 0 ? Shape{1, s.cols} : (axis == 1 ? Shape{s.rows, 1} : Shape{1, 1});
    return ops::record_library_op(tape, "max", {x}, out, max_forward<T>, max_backward<T>, [&](Node<T>& y) { y.params()[0] = axis; });
}

// Over a plain array, so that neither overload copies the list of handles (no allocation).
template <class T>
Var<T> concat_parts(const Var<T>* parts, std::size_t count, int axis) {
    if (count == 0) ops::fail("concat", "no parts given (it needs at least one handle)");
    ops::require_axis("concat", axis);
    const ops::HeldTape<T> held("concat", {parts[0]});
    Tape<T>& tape = held.tape();
    const Shape first = parts[0].shape();
    for (std::size_t i = 0; i < count; ++i) {
        const ops::HeldTape<T> same_tape("concat", {parts[0], parts[i]});  // held already: checks
        const Shape s = parts[i].shape();
        if (axis == 0 ? s.cols != first.cols : s.rows != first.rows)
            ops::fail("concat", "part " + std::to_string(i) + " is " + to_string(s) + " but part 0 is " + to_string(first) +
                                    (axis == 0 ? " (along axis 0, the features, every part needs the same number of columns)"
                                               : " (along axis 1, the examples, every part needs the same number of rows)"));
    }
    // An entry takes at most 3 inputs: each next entry joins the previous result with 2 more parts.
    Var<T> joined = count == 1 ? concat_entry<T>(tape, {parts[0]}, axis)
                    : count == 2 ? concat_entry<T>(tape, {parts[0], parts[1]}, axis)
                                 : concat_entry<T>(tape, {parts[0], parts[1], parts[2]}, axis);
    std::size_t next = std::min<std::size_t>(count, 3);
    while (next < count) {
        joined = next + 1 < count ? concat_entry<T>(tape, {joined, parts[next], parts[next + 1]}, axis)
                                         : concat_entry<T>(tape, {joined, parts[next]}, axis);
        next += 2;
    }
    return joined;
}

}  // namespace

template <class T> Var<T> concat(const std::vector<Var<T>>& parts, int axis) { return concat_parts(parts.data(), parts.size(), axis); }
template <class T> Var<T> concat(std::initializer_list<Var<T>> parts, int axis) { return concat_parts(parts.begin(), parts.size(), axis); }

template <class T>
Var<T> slice(const Var<T>& x, int axis, std::size_t begin, std::size_t end) {
    const ops::HeldTape<T> held("slice", {x});
    Tape<T>& tape = held.tape();
    ops::require_axis("slice", axis);
    const Shape s = x.shape();
    const std::size_t n = axis == 0 ? s.rows : s.cols;
    if (!(begin < end && end <= n))
        ops::fail("slice", "range [" + std::to_string(begin) + ", " + std::to_string(end) + ") of " +
                               (axis == 0 ? "rows" : "columns") + " is out of range for " + to_string(s) +
                               " (it needs begin < end <= " + std::to_string(n) + ")");
    const Shape out = axis == 0 ? Shape{end - begin, s.cols} : Shape{s.rows, end - begin};
    return ops::record_library_op(tape, "slice", {x}, out, slice_forward<T>, slice_backward<T>, [&](Node<T>& y) {
        y.params()[0] = static_cast<std::uint32_t>(axis);
        y.set_param64(1, begin);  // a column past 2^32 of a long row: 32 bits read column 0 (found by an attack)
        y.set_param64(3, end);
    });
}

template <class T>
Var<T> gather(const Var<T>& table, const Labels& ids, int axis) {
    const ops::HeldTape<T> held("gather", {table});
    Tape<T>& tape = held.tape();
    ops::require_axis("gather", axis);
    const Shape s = table.shape();
    const std::size_t vocab = axis == 1 ? s.cols : s.rows;
    if (ids.empty()) ops::fail("gather", "no ids given (the table is " + to_string(s) + ")");
    for (std::size_t j = 0; j < ids.size(); ++j)
        if (ids[j] >= vocab)
            ops::fail("gather", "id " + std::to_string(ids[j]) + " at position " + std::to_string(j) + " is out of range for a " +
                                    to_string(s) + " table (" + std::to_string(vocab) + " entries along axis " +
                                    std::to_string(axis) + (axis == 1 ? ": one column per id, features x vocab)" : ": one row per id)"));
    const Shape out = axis == 1 ? Shape{s.rows, ids.size()} : Shape{ids.size(), s.cols};
    return ops::record_library_op(tape, "gather", {table}, out, gather_forward<T>, gather_backward<T>, [&](Node<T>& y) {
        y.params()[0] = static_cast<std::uint32_t>(axis);
        y.labels() = ids;  // copy-assign keeps the capacity: no allocation on reuse
    });
}

template <class T>
Var<T> reshape(const Var<T>& x, Shape shape) {
    const ops::HeldTape<T> held("reshape", {x});
    Tape<T>& tape = held.tape();
    std::size_t size = 0;
    if (!multiply_fits(shape.rows, shape.cols, size) || size != x.shape().size() || size == 0)
        ops::fail("reshape", to_string(x.shape()) + " cannot become " + to_string(shape) + " (the sizes must be equal and nonzero)");
    return ops::record_library_op(tape, "reshape", {x}, shape, reshape_forward<T>, reshape_backward<T>);
}

template <class T> Var<T> max(const Var<T>& x, int axis) { return max_over(x, static_cast<std::uint32_t>(ops::require_axis("max", axis))); }
template <class T> Var<T> max(const Var<T>& x) { return max_over(x, 2); }

#define TAPEGRAD_INSTANTIATE(T)                                                 \
    template Var<T> concat<T>(const std::vector<Var<T>>&, int);                 \
    template Var<T> concat<T>(std::initializer_list<Var<T>>, int);              \
    template Var<T> slice<T>(const Var<T>&, int, std::size_t, std::size_t);            \
    template Var<T> gather<T>(const Var<T>&, const Labels&, int);                      \
    template Var<T> reshape<T>(const Var<T>&, Shape);                                  \
    template Var<T> max<T>(const Var<T>&, int);                                        \
    template Var<T> max<T>(const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
