#include "autodiff/atomic_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autodiff/error.hpp"

namespace autodiff {
namespace fs = std::filesystem;
namespace {

IoError system_error(const std::string& what, const fs::path& path) {
    return IoError(what + " '" + path.string() + "': " + std::strerror(errno));
}

// ".name.tmp-<tag>XXXXXX" beside `target`, as a mutable buffer for mkstemp/mkdtemp.
std::vector<char> temp_template(const fs::path& target, const std::string& tag = "") {
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    const std::string pattern = (dir / ("." + target.filename().string() + ".tmp-" + tag + "XXXXXX")).string();
    return std::vector<char>(pattern.c_str(), pattern.c_str() + pattern.size() + 1);
}

fs::path parent_or_dot(const fs::path& p) {
    return p.has_parent_path() ? p.parent_path() : fs::path(".");
}

// Closes and removes the temporary file unless release() was called, so every early exit
// (exception from the writer, failed flush, failed rename) cleans up.
class TempFile {
public:
    explicit TempFile(const fs::path& target) {
        std::vector<char> name = temp_template(target);
        fd_ = ::mkstemp(name.data());
        if (fd_ < 0) throw system_error("cannot create a temporary file beside", target);
        path_ = name.data();
    }
    ~TempFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!path_.empty()) {
            std::error_code ignored;
            fs::remove(path_, ignored);
        }
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    const fs::path& path() const { return path_; }
    int fd() const { return fd_; }
    void close() {
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) throw system_error("cannot close", path_);
    }
    void release() { path_.clear(); }

private:
    int fd_ = -1;
    fs::path path_;
};

}  // namespace

void fsync_path(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw system_error("cannot open for fsync", path);
    const int rc = ::fsync(fd);
    const int saved = errno;
    ::close(fd);
    errno = saved;
    if (rc != 0) throw system_error("cannot fsync", path);
}

mode_t current_umask() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
    }
    // Old kernels: umask() is the only way to read it, and it writes it too (briefly).
    const mode_t mask = ::umask(022);
    ::umask(mask);
    return mask;
}

fs::path make_temp_dir_beside(const fs::path& target) {
    std::vector<char> name = temp_template(target, std::to_string(::getpid()) + "-");
    if (::mkdtemp(name.data()) == nullptr) {
        throw system_error("cannot create a temporary directory beside", target);
    }
    const fs::path dir(name.data());
    if (::chmod(dir.c_str(), 0777 & ~current_umask()) != 0) {
        const int error = errno;
        fs::remove(dir);
        errno = error;
        throw system_error("cannot set the mode of", dir);
    }
    return dir;
}

// Through a symlink, the file it points to is replaced (beside it, where the rename is atomic):
// renaming over the link itself would turn the user's link into a file of its own and leave
// its target stale.
void write_file_atomically(const fs::path& path_in, const std::function<void(std::ostream&)>& write) {
    write_file_atomically(path_in, write, {});
}

namespace {
// Puts the written temporary file at `path`, replacing what stands there only if may_replace
// accepts it (see the header). Returns with the temporary file's name free to remove.
void put_in_place(TempFile& temp, const fs::path& path, const std::function<bool(const fs::path&)>& may_replace) {
    if (!may_replace) {
        if (::rename(temp.path().c_str(), path.c_str()) != 0) throw system_error("cannot rename temporary file over", path);
        temp.release();
        return;
    }
    for (int attempt = 0; attempt < 8; ++attempt) {
        if (::renameat2(AT_FDCWD, temp.path().c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) == 0) {
            if (may_replace(temp.path())) return;  // the displaced file, at the temporary name, is removed
            if (::renameat2(AT_FDCWD, temp.path().c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) != 0) {
                const fs::path kept = temp.path();
                temp.release();  // it holds the file found at path: never removed
                throw system_error("the file found at '" + path.string() + "' is now '" + kept.string() +
                                       "': cannot put it back at",
                                   path);
            }
            throw IoError("'" + path.string() + "' is now a file this program did not write; it was left as it is");
        }
        if (errno == ENOENT) {  // nothing stands there: put it there unless something appeared meanwhile
            if (::renameat2(AT_FDCWD, temp.path().c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
                temp.release();
                return;
            }
            if (errno == EEXIST) continue;
        }
        if (errno != EINVAL && errno != ENOSYS) throw system_error("cannot rename temporary file over", path);
        if (!fs::exists(path) || may_replace(path)) return put_in_place(temp, path, {});  // no exchange here
        throw IoError("'" + path.string() + "' is now a file this program did not write; it was left as it is");
    }
    throw IoError("'" + path.string() + "' kept appearing and disappearing while it was written");
}
}  // namespace

void write_file_atomically(const fs::path& path_in, const std::function<void(std::ostream&)>& write,
                           const std::function<bool(const fs::path&)>& may_replace) {
    const fs::path path = fs::is_symlink(path_in) ? fs::weakly_canonical(path_in) : path_in;
    TempFile temp(path);
    if (::fchmod(temp.fd(), 0666 & ~current_umask()) != 0) throw system_error("cannot set the mode of the file for", path);
    {
        // Written through a second descriptor (the stream's own); fsync on mkstemp's
        // descriptor then reaches the same file.
        std::ofstream out(temp.path(), std::ios::binary | std::ios::trunc);
        if (!out) throw system_error("cannot open temporary file for", path);
        write(out);
        out.close();  // not left to the destructor, which would swallow a failed flush
        if (!out) throw IoError("cannot write '" + path.string() + "' (disk full?)");
    }
    if (::fsync(temp.fd()) != 0) throw system_error("cannot fsync temporary file for", path);
    temp.close();
    put_in_place(temp, path, may_replace);
    // The rename is durable only once the directory entry is on disk.
    fsync_path(parent_or_dot(path));
}

}  // namespace autodiff
