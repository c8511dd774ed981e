#include "nn/io/regular_file.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/data_error.hpp"

namespace nn {

RegularFile::RegularFile(const std::filesystem::path& path, const std::string& what) : path_(path) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) {
        const int error = errno;
        if (error == ENOENT) throw DataError(path.string() + ": missing " + what + ": no such file or directory");
        throw DataError(path.string() + ": cannot open the " + what + ": " + std::strerror(error));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        const int error = errno;
        ::close(fd_);
        throw DataError(path.string() + ": cannot read the " + what + ": " + std::strerror(error));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd_);
        throw DataError(path.string() + ": cannot read the " + what +
                        ": not a regular file (a FIFO, a device or a directory is never read)");
    }
    // A regular file never blocks; clear the flag so reads behave as usual.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    size_ = static_cast<std::size_t>(st.st_size);
}

RegularFile::~RegularFile() {
    if (fd_ >= 0) ::close(fd_);
}

int RegularFile::release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
}

std::string RegularFile::read_all(std::size_t max_bytes) {
    if (size_ > max_bytes) {
        throw DataError(path_.string() + ": " + std::to_string(size_) + " bytes, more than the " +
                        std::to_string(max_bytes) + " this file may hold");
    }
    std::string bytes(size_, '\0');
    std::size_t got = 0;
    while (got < size_) {
        const ssize_t n = ::read(fd_, bytes.data() + got, size_ - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw DataError(path_.string() + ": read error: " + std::strerror(errno));
        if (n == 0) break;  // shrank while we read: what is there is what we check
        got += static_cast<std::size_t>(n);
    }
    bytes.resize(got);
    return bytes;
}

std::string read_regular_file(const std::filesystem::path& path, std::size_t max_bytes, const std::string& what) {
    return RegularFile(path, what).read_all(max_bytes);
}

}  // namespace nn
