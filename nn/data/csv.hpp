#pragma once
/// @file
/// Classification data from CSV text: numeric feature columns, the class in the last column
/// (a name, or an integer class index), an optional header line. One parser serves files,
/// streams and the Iris data embedded in the library.
#include <istream>
#include <string>
#include <string_view>

#include "nn/data/dataset.hpp"

namespace nn {

/// Parses CSV text from `in`. `name` only labels error messages ("name:line: ...").
/// - The first non-blank line is a header when none of its feature fields is a number, or
///   when its class field is the only one that is not an integer (a header of numbers, such
///   as pixel columns named "0", "1", ..., above integer class indices).
/// - Classes: if every class field is a non-negative integer, it is the class index
///   (classes = largest + 1, class_names "0", "1", ...; an index above 65535, however many
///   digits it has, is a DataError); otherwise each distinct name gets
///   the next index in order of first appearance and is kept in class_names.
/// - Blank lines are skipped; fields are trimmed of spaces; "\r\n" endings are accepted; a
///   UTF-8 byte order mark at the start is skipped.
/// - Quoted fields ("a,b") are not supported: a field holding a '"' is a DataError naming the
///   line and the column.
/// Throws DataError naming the source and line for a bad or non-finite number, a wrong
/// column count, or no data at all.
template <class T>
Dataset<T> parse_csv_dataset(std::istream& in, const std::string& name);

/// parse_csv_dataset on the file at `path`; a missing file, or one that is not a regular file
/// (a FIFO, a device), is a DataError too.
template <class T>
Dataset<T> load_csv_dataset(const std::string& path);

/// Fisher's Iris (150 examples, 4 features, 3 classes), compiled into the library:
/// needs no file. See nn/data/README.md for its source.
template <class T>
Dataset<T> iris();

namespace detail {
std::string_view iris_csv_text();  ///< defined in the generated nn/data/iris_data.cpp
}

}  // namespace nn
