#pragma once
/// @file
/// @brief Pictures of the tape: the recorded computation as a Graphviz DOT graph, as
/// micrograd's draw_dot or torchviz's make_dot draw theirs.
///
/// @code
/// autodiff::save_dot("tape.dot", tape, loss);   // then: dot -Tsvg tape.dot -o tape.svg
/// @endcode
/// One box per tape entry that the output depends on, in recording order, with an arrow
/// from each input to the op that reads it:
///  - an op shows its name and output shape; an input of a multi-input op is numbered
///    on its arrow (0, 1, 2: the order of the op's arguments);
///  - a parameter shows its name (Parameter::name) and shape, filled blue; a leaf is
///    filled light blue; a constant (data, targets...) is grey and dashed;
///  - an entry that carries a gradient has a bold outline, and once backward() has run,
///    "grad" followed by the gradient's shape; an entry that needs none is dashed;
///  - the output is filled gold with a double outline, and a 1x1 output shows its value
///    ("loss = 1.386").

#include <filesystem>
#include <string>

#include "autodiff/tape.hpp"

namespace autodiff {

/// Options for to_dot().
struct DotOptions {
    std::string title;                   ///< a caption under the graph (empty: none)
    std::string output_label = "loss";   ///< what a 1x1 output's value is called
    bool left_to_right = false;          ///< rankdir=LR instead of top to bottom
};

/// The part of `tape` that `output` depends on, as a DOT digraph. Throws autodiff::Error
/// if `output` is not a live handle of `tape`.
template <class T>
std::string to_dot(const Tape<T>& tape, Var<T> output, const DotOptions& options = {});

/// Writes to_dot(tape, output, options) to `path`, atomically (write_file_atomically): a
/// write that fails leaves a file that stood at `path` as it was. A pipe or a device (a FIFO,
/// /dev/stdout) is written in place. Throws autodiff::IoError, naming the path (and the
/// system's reason where it gives one), if it cannot.
template <class T>
void save_dot(const std::filesystem::path& path, const Tape<T>& tape, Var<T> output, const DotOptions& options = {});

}  // namespace autodiff
