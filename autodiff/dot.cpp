// to_dot: one reverse pass marks what the output depends on, one forward pass prints it.

#include "autodiff/dot.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "autodiff/atomic_file.hpp"

namespace autodiff {

namespace {

std::string escaped(const std::string& text) {  // for a "quoted" DOT string
    std::string out;
    for (char c : text) {
        if (c == '\0') {  // a DOT file cannot hold one: shown as the two characters \0
            out += "\\\\0";
            continue;
        }
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

std::string number(double x) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", x);
    return buffer;
}

// Whether input k of n is still the entry n read. An entry recorded under NoGrad may have
// had its input released and the input's entry reused by a later NoGrad recording (of
// any inputs, even ones recorded after n): only an input recorded with gradients on, which
// is never released, is surely the one n read.
template <class T>
bool input_kept(const Tape<T>& tape, const Node<T>& n, int k) {
    return !n.recorded_under_nograd() || !tape.entry(n.inputs[k]).recorded_under_nograd();
}

}  // namespace

template <class T>
std::string to_dot(const Tape<T>& tape, Var<T> output, const DotOptions& options) {
    tape.check(output, "to_dot");
    const std::size_t last = output.index();
    // Recording order is topological: walking back from the output reaches every input.
    std::vector<bool> used(last + 1, false);
    used[last] = true;
    for (std::size_t i = last + 1; i-- > 0;) {
        if (!used[i]) continue;
        const Node<T>& n = tape.entry(i);
        for (int k = 0; k < n.arity; ++k)
            if (input_kept(tape, n, k)) used[n.inputs[k]] = true;
    }

    std::ostringstream dot;
    dot << "digraph tape {\n";
    if (options.left_to_right) dot << "  rankdir=LR;\n";
    if (!options.title.empty())
        dot << "  label=\"" << escaped(options.title) << "\";\n  labelloc=b;\n  fontname=\"Helvetica\";\n";
    dot << "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\", fontsize=11];\n";
    dot << "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];\n";
    for (std::size_t i = 0; i <= last; ++i) {
        if (!used[i]) continue;
        const Node<T>& n = tape.entry(i);
        const Shape shape = shape_of(tape.value(static_cast<std::uint32_t>(i)));
        const std::string name = n.parameter == nullptr   ? std::string(n.op)
                                 : n.parameter->name.empty() ? std::string("parameter")
                                                             : n.parameter->name;
        std::string label = escaped(name) + "\\n" + to_string(shape);
        std::string fill = "white", style = "rounded,filled";
        if (n.parameter != nullptr)
            fill = "\"#9ecae1\"";
        else if (n.arity == 0)
            fill = n.requires_grad ? "\"#deebf7\"" : "\"#eeeeee\"";
        if (tape.gradient_started(i)) label += "\\ngrad " + to_string(shape);
        for (int k = 0; k < n.arity; ++k)
            if (!input_kept(tape, n, k)) {
                label += "\\n(NoGrad: inputs not drawn)";
                break;
            }
        if (i == last && shape == Shape{1, 1})
            label += "\\n" + escaped(options.output_label) + " = " + number(double(tape.value(output.index())(0, 0)));
        if (i == last) fill = "\"#fdd835\"";
        if (!n.requires_grad) style += ",dashed";
        dot << "  n" << i << " [label=\"" << label << "\", style=\"" << style << "\", fillcolor=" << fill;
        if (n.requires_grad) dot << ", penwidth=2";
        if (i == last) dot << ", peripheries=2";
        dot << "];\n";
    }
    for (std::size_t i = 0; i <= last; ++i) {
        if (!used[i]) continue;
        const Node<T>& n = tape.entry(i);
        for (int k = 0; k < n.arity; ++k) {
            if (!input_kept(tape, n, k)) continue;
            dot << "  n" << n.inputs[k] << " -> n" << i;
            if (n.arity > 1) dot << " [label=\"" << k << "\"]";
            dot << ";\n";
        }
    }
    dot << "}\n";
    return dot.str();
}

namespace {
// A stream rather than a document: a pipe or a device, or a name the system gives an open
// file (/dev/stdout, /proc/self/fd/N), which a shell redirection may point at a regular file.
// Renaming over that file would leave the descriptor writing to a file no name reaches.
bool names_a_stream(const std::filesystem::path& path) {
    std::error_code no_status;  // none (nothing there, or a directory that cannot be read): the writer says why
    if (std::filesystem::is_other(std::filesystem::status(path, no_status))) return true;
    const std::string absolute = std::filesystem::absolute(path, no_status).lexically_normal().string();
    return absolute.rfind("/dev/", 0) == 0 || absolute.rfind("/proc/", 0) == 0;
}
}  // namespace

// Written atomically over a file (or where none is): writing the path in place truncated a
// user's file at once, and a write that failed part way (a full disk, a crash) left it cut
// short (found by the review). A stream holds nothing a failed write could destroy, and a
// rename would put a file in its place (a pipe's reader waiting for ever, a redirected
// stdout's file replaced under the shell): written in place.
template <class T>
void save_dot(const std::filesystem::path& path, const Tape<T>& tape, Var<T> output, const DotOptions& options) {
    const std::string text = to_dot(tape, output, options);
    if (names_a_stream(path)) {
        std::ofstream out(path, std::ios::binary);
        out << text;
        out.flush();
        if (!out) throw IoError("save_dot: cannot write '" + path.string() + "'");
        return;
    }
    try {
        write_file_atomically(path, [&](std::ostream& out) { out << text; });
    } catch (const IoError& e) {
        throw IoError(std::string("save_dot: ") + e.what());
    }
}

#define TAPEGRAD_INSTANTIATE(T)                                                                \
    template std::string to_dot<T>(const Tape<T>&, Var<T>, const DotOptions&);               \
    template void save_dot<T>(const std::filesystem::path&, const Tape<T>&, Var<T>, const DotOptions&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
