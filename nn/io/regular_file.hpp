#pragma once
/// @file
/// The one way tapegrad opens a file it reads (checkpoints, arrays, CSV, IDX): only a regular
/// file, checked on the open descriptor before a byte is read, so a FIFO cannot hang a load and
/// /dev/zero cannot feed it forever; and no more bytes than a stated bound.
#include <cstddef>
#include <filesystem>
#include <string>

namespace nn {

/// An open, read-only descriptor of a regular file. The constructor throws nn::DataError naming
/// the path, `what` it should have been and the reason (the system's, or "not a regular file").
class RegularFile {
public:
    RegularFile(const std::filesystem::path& path, const std::string& what);
    ~RegularFile();
    RegularFile(const RegularFile&) = delete;
    RegularFile& operator=(const RegularFile&) = delete;

    int fd() const { return fd_; }
    /// Its size when it was opened.
    std::size_t size() const { return size_; }
    /// Gives up ownership of the descriptor (to a reader that closes it, such as gzdopen).
    int release();
    /// Reads it whole; DataError if it is larger than `max_bytes` or a read fails.
    std::string read_all(std::size_t max_bytes);

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::size_t size_ = 0;
};

/// RegularFile(path, what).read_all(max_bytes).
std::string read_regular_file(const std::filesystem::path& path, std::size_t max_bytes, const std::string& what);

}  // namespace nn
