#include "nn/io/checkpoint.hpp"

#include <algorithm>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "autodiff/matrix.hpp"
#include "nn/data_error.hpp"
#include "nn/io/atomic_file.hpp"
#include "nn/io/directory_replace.hpp"
#include "nn/io/manifest.hpp"
#include "nn/io/npy_matrix.hpp"
#include "nn/io/regular_file.hpp"

namespace nn {
namespace fs = std::filesystem;
namespace {

// "ckpt/", "ckpt/." and "ckpt" are the same directory: its last component names it (and its
// temporary and parked directories). Only these are taken off; "link/../x" is not "x".
fs::path without_trailing_dots(fs::path dir) {
    while (dir.has_relative_path() && (!dir.has_filename() || dir.filename() == ".")) dir = dir.parent_path();
    return dir;
}

// "ckpt" as "./ckpt": a save creates, fsyncs and renames in its parent directory.
fs::path with_parent(const fs::path& dir) { return dir.has_parent_path() ? dir : fs::path(".") / dir; }

// The files a checkpoint consists of, by the manifest in `dir`: the manifest and its arrays.
std::vector<std::string> files_of(const Manifest& manifest) {
    std::vector<std::string> files{manifest_file_name};
    for (const ManifestArray& a : manifest.arrays) files.push_back(a.file());
    return files;
}

bool is_one_of(const std::string& name, const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// A directory a killed save left: only regular files it writes (arrays, a manifest, their
// temporary files), nothing else.
bool holds_only_what_a_save_writes(const fs::path& dir) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        const std::string name = entry.path().filename().string();
        const bool ours = name == manifest_file_name || (name.size() > 4 && name.substr(name.size() - 4) == ".npy") ||
                          (name[0] == '.' && name.find(".tmp-") != std::string::npos);
        if (!ours || !fs::is_regular_file(fs::symlink_status(entry.path()))) return false;
    }
    return !error;
}

// Removes what the checkpoint in `dir` consists of, then `dir` if that left it empty.
void remove_checkpoint_files(const fs::path& dir, const std::vector<std::string>& files) {
    std::error_code ignored;
    for (const std::string& f : files) fs::remove(dir / f, ignored);
    fs::remove(dir, ignored);  // fails, and keeps it, if anything else appeared meanwhile
}

// What a directory holds, seen as a checkpoint save_checkpoint may replace: the files it
// consists of, or what is wrong with it. An empty directory has no files and nothing wrong.
struct CheckpointContents {
    std::vector<std::string> files;
    std::string problem;
};

std::string comma_separated(const std::vector<std::string>& names) {
    std::string text;
    for (const std::string& n : names) text += (text.empty() ? "" : ", ") + n;
    return text;
}

// `dir` must be a directory. A replaceable checkpoint is complete (its manifest parses and
// matches its manifest_crc32, every file it names is there) and holds no other file.
CheckpointContents listed_contents(const fs::path& dir) {
    if (fs::is_empty(dir)) return {};
    Manifest manifest;
    try {
        manifest = read_manifest(dir);
        verify_manifest_crc(manifest, (dir / manifest_file_name).string());
    } catch (const DataError& e) {
        return {{}, std::string("it is not empty and not a checkpoint (a tapegrad checkpoint holds a valid ") +
                        manifest_file_name + "; here: " + e.what() + ")"};
    }
    const std::vector<std::string> files = files_of(manifest);
    std::vector<std::string> foreign, missing;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (!is_one_of(name, files) || !fs::is_regular_file(fs::symlink_status(entry.path()))) foreign.push_back(name);
    }
    for (const std::string& f : files)
        if (!fs::is_regular_file(fs::symlink_status(dir / f))) missing.push_back(f);
    if (!foreign.empty()) {
        return {{}, "it holds files that are not part of the checkpoint (" + comma_separated(foreign) +
                        "); saving would delete them. Move them elsewhere or save to another directory"};
    }
    if (!missing.empty()) {
        return {{}, "it is an incomplete checkpoint (" + comma_separated(missing) +
                        " missing); remove it yourself if it is not needed"};
    }
    return {files, ""};
}

// listed_contents, with a directory that cannot be read (permissions) as its problem.
CheckpointContents contents_of(const fs::path& dir) {
    try {
        return listed_contents(dir);
    } catch (const fs::filesystem_error& e) {
        return {{}, std::string("it cannot be read: ") + e.what()};
    }
}

// The files of the checkpoint at `dir`, after checking save_checkpoint may replace it.
std::vector<std::string> replaceable_files(const fs::path& dir) {
    const auto status = fs::symlink_status(dir);
    if (!fs::exists(status)) return {};
    const std::string refusing = "save_checkpoint: refusing to replace '" + dir.string() + "': ";
    if (!fs::is_directory(status)) throw IoError(refusing + "it exists and is not a directory");
    CheckpointContents contents = contents_of(dir);
    if (!contents.problem.empty()) throw IoError(refusing + contents.problem);
    return std::move(contents.files);
}

// Which parked directories (directory_replace.hpp) may hold the checkpoint of `dir`: a
// save takes only those of killed processes; a load also those of a save still running,
// which are the committed checkpoint until that save's last rename.
enum class ParkedBy { gone_process, any_process };

// The newest directory that exchange_directories parked beside `dir` and that holds a complete
// checkpoint and nothing else; empty if there is none.
fs::path newest_parked_checkpoint(const fs::path& dir, ParkedBy parked_by) {
    fs::path newest;
    fs::file_time_type newest_time{};
    for (const ParkedDir& parked : parked_dirs_beside(dir)) {
        if (parked_by == ParkedBy::gone_process && !parked.owner_gone) continue;
        const CheckpointContents contents = contents_of(parked.path);
        if (!contents.problem.empty() || contents.files.empty()) continue;
        std::error_code error;
        const auto time = fs::last_write_time(parked.path / manifest_file_name, error);
        if (!error && (newest.empty() || time > newest_time)) {
            newest = parked.path;
            newest_time = time;
        }
    }
    return newest;
}

// A save killed between the fallback exchange's renames leaves no `dir` and its old
// checkpoint parked beside it: that checkpoint is put back before anything else is done.
void recover_parked_checkpoint(const fs::path& dir) {
    if (fs::exists(fs::symlink_status(dir))) return;
    const fs::path parked = newest_parked_checkpoint(dir, ParkedBy::gone_process);
    if (parked.empty()) return;
    std::error_code error;
    fs::rename(parked, dir, error);
    if (error) {
        throw IoError("save_checkpoint: cannot move the checkpoint parked at '" + parked.string() + "' back to '" +
                      dir.string() + "': " + error.message());
    }
}

// A save killed after the fallback exchange put its new checkpoint in place leaves the old
// one parked: once its process is gone, its own files are removed (and an empty parking
// directory), anything else in it is left alone.
void remove_stale_parked_checkpoints(const fs::path& dir) {
    for (const ParkedDir& parked : parked_dirs_beside(dir)) {
        if (!parked.owner_gone) continue;
        const CheckpointContents contents = contents_of(parked.path);
        if (contents.problem.empty()) remove_checkpoint_files(parked.path, contents.files);
    }
}

template <class T>
void check_finite_array(const std::string& name, const xt::xtensor<T, 2>& a) {
    const std::string at = autodiff::first_non_finite(a);
    if (!at.empty()) {
        throw autodiff::Error("save_checkpoint: array '" + name + "' is not finite: " + at +
                              " (a diverged model is not saved over a good checkpoint)");
    }
}

}  // namespace

// lexically_normal would drop "link/.." where the kernel steps out of what the link points to:
// save and load could use two different directories. Only a name that ends in "." or ".." (or
// is a symlink) is resolved here, so that the temporary and parked directories go beside the
// real one; messages name the rest as given.
fs::path checkpoint_directory(const fs::path& dir_in) {
    if (dir_in.empty()) throw autodiff::Error("checkpoint: empty directory name");
    fs::path dir = without_trailing_dots(dir_in);
    if (dir.empty() || dir.filename() == ".." || fs::is_symlink(dir)) dir = fs::weakly_canonical(dir_in);
    return dir;
}

namespace {

// std::filesystem throws its own filesystem_error where a path cannot be resolved (a symlink
// loop as the directory, found by an attack); callers of tapegrad catch autodiff::Error for
// bad input, so the public functions below say it as an IoError naming the path.
template <class F>
auto filesystem_errors_as_io(const char* who, const fs::path& dir, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const fs::filesystem_error& e) {
        throw IoError(std::string(who) + ": '" + dir.string() + "': " + e.code().message());
    }
}

void save_checkpoint_unchecked(const fs::path& dir_in, const Checkpoint& ckpt);
Checkpoint load_checkpoint_retried(const fs::path& dir_in);

// What a save needs beside `dir` that check_checkpoint_target can tell before a run (found by
// an attack, each of which passed it and failed at the first save): the first ancestor that
// exists must be a directory ("file/ckpt": "Not a directory"), and the names a save makes
// beside the directory (".<name>.previous-<pid>-XXXXXX", the longest) must fit the
// filesystem's limit (a 240-character name: "File name too long").
void require_saveable_beside(const fs::path& dir) {
    for (fs::path up = with_parent(dir).parent_path(); !up.empty(); up = up.parent_path()) {
        std::error_code error;
        const fs::file_status status = fs::status(up, error);
        if (!fs::exists(status)) {
            if (up == up.root_path()) return;
            continue;
        }
        if (!fs::is_directory(status))
            throw IoError("checkpoint: cannot save into '" + dir.string() + "': '" + up.string() + "' is not a directory");
        const long limit = ::pathconf(up.c_str(), _PC_NAME_MAX);
        const std::size_t longest = ("." + dir.filename().string() + ".previous-4294967295-XXXXXX").size();
        if (longest > std::size_t(limit > 0 ? limit : 255))
            throw IoError("checkpoint: the name of '" + dir.string() + "' is too long: a save makes names of " +
                          std::to_string(longest) + " characters beside it, and the filesystem takes " +
                          std::to_string(limit > 0 ? limit : 255));
        return;
    }
}

}  // namespace

void check_checkpoint_target(const fs::path& dir_in) {
    filesystem_errors_as_io("checkpoint", dir_in, [&] {
        const fs::path dir = checkpoint_directory(dir_in);
        replaceable_files(dir);
        require_saveable_beside(dir);
    });
}

void save_checkpoint(const fs::path& dir_in, const Checkpoint& ckpt) {
    filesystem_errors_as_io("save_checkpoint", dir_in, [&] { save_checkpoint_unchecked(dir_in, ckpt); });
}

namespace {

void save_checkpoint_unchecked(const fs::path& dir_in, const Checkpoint& ckpt) {
    const fs::path dir = with_parent(checkpoint_directory(dir_in));
    for (const auto& [name, array] : ckpt.arrays) {
        check_array_name(name, "save_checkpoint");
        // Before anything is written (found by an attack: 'File name too long' half way).
        // A load takes longer names, which a checkpoint made elsewhere may hold.
        if (name.size() > max_array_name_length)
            throw autodiff::Error("save_checkpoint: array name '" + name + "' is " + std::to_string(name.size()) +
                                  " characters; a checkpoint takes at most " + std::to_string(max_array_name_length) +
                                  " (its file is written as '.<name>.npy.tmp-XXXXXX' first, at most 255 bytes)");
        std::visit([&name = name](const auto& a) { check_finite_array(name, a); }, array);
    }
    recover_parked_checkpoint(dir);
    const std::vector<std::string> old_files = replaceable_files(dir);
    if (!old_files.empty()) remove_stale_parked_checkpoints(dir);
    std::error_code error;
    fs::create_directories(dir.parent_path(), error);
    if (error) throw IoError("save_checkpoint: cannot create '" + dir.parent_path().string() + "': " + error.message());
    remove_stale_temp_dirs(dir, holds_only_what_a_save_writes);

    struct TempDirGuard {  // removes the new directory if anything below throws
        fs::path path;
        ~TempDirGuard() {
            std::error_code ignored;
            if (!path.empty()) fs::remove_all(path, ignored);
        }
    } fresh{make_temp_dir_beside(dir)};
    std::vector<ManifestArray> arrays;
    for (const auto& [name, array] : ckpt.arrays) {
        ManifestArray entry;
        entry.name = name;
        const std::string bytes = std::visit(
            [&entry](const auto& a) {
                using T = typename std::decay_t<decltype(a)>::value_type;
                entry.dtype = npy_dtype_name<T>();
                entry.rows = a.shape(0);
                entry.cols = a.shape(1);
                return npy_bytes(a);
            },
            array);
        entry.bytes = bytes.size();
        entry.crc32 = crc32_hex(bytes);
        write_file_atomically(fresh.path / entry.file(),
                              [&](std::ostream& out) { out.write(bytes.data(), std::streamsize(bytes.size())); });
        arrays.push_back(entry);
    }
    // The manifest last: a directory without one is never mistaken for a checkpoint.
    const std::string manifest = manifest_text(ckpt.meta, arrays);
    write_file_atomically(fresh.path / manifest_file_name,
                          [&](std::ostream& out) { out.write(manifest.data(), std::streamsize(manifest.size())); });
    fsync_path(fresh.path);

    exchange_directories(fresh.path, dir);
    fsync_path(dir.parent_path());
    // `fresh` now names the old checkpoint (or nothing): remove only the files it consisted of.
    remove_checkpoint_files(fresh.path, old_files);
    fresh.path.clear();
}

Checkpoint load_checkpoint_once(const fs::path& dir_in) {
    fs::path dir = checkpoint_directory(dir_in);
    if (!fs::exists(fs::symlink_status(dir))) {
        // Without RENAME_EXCHANGE a save parks the old checkpoint for a moment (or, killed
        // then, until the next save): that is the checkpoint at `dir`.
        const fs::path parked = newest_parked_checkpoint(dir, ParkedBy::any_process);
        if (!parked.empty()) dir = parked;
    }
    if (!fs::is_directory(dir)) throw DataError(dir_in.string() + ": no such checkpoint directory");

    const std::string manifest_path = (dir / manifest_file_name).string();
    const Manifest manifest = read_manifest(dir);
    Checkpoint ckpt;
    ckpt.meta = manifest.meta;
    for (const ManifestArray& a : manifest.arrays) {
        const fs::path path = dir / a.file();
        RegularFile file(path, "array file named in the manifest");
        // Sized before it is read: a manifest cannot make us read more than it announces.
        if (file.size() != a.bytes) {
            throw DataError(path.string() + ": truncated or overwritten: the manifest says " + std::to_string(a.bytes) +
                            " bytes, the file has " + std::to_string(file.size()));
        }
        const std::string bytes = file.read_all(a.bytes);
        const std::string crc = crc32_hex(bytes);
        if (crc != a.crc32) {
            throw DataError(path.string() + ": corrupted: CRC32 is " + crc + " but the manifest says " + a.crc32);
        }
        if (a.dtype == npy_dtype_name<float>()) {
            ckpt.arrays[a.name] = parse_npy_matrix<float>(bytes, path.string(), a.rows, a.cols);
        } else {
            ckpt.arrays[a.name] = parse_npy_matrix<double>(bytes, path.string(), a.rows, a.cols);
        }
    }
    // Last, so that the errors above still say what is wrong with a hand-edited manifest.
    verify_manifest_crc(manifest, manifest_path);
    return ckpt;
}

// The directory's identity, or all zeros if there is none: a save replaces a checkpoint by
// exchanging directories, so a load that overlapped one sees it change. The inode alone
// would not do: the old directory, removed, frees its number for the next save's.
struct DirectoryIdentity {
    dev_t device = 0;
    ino_t inode = 0;
    struct timespec changed {};
    bool operator==(const DirectoryIdentity& o) const {
        return device == o.device && inode == o.inode && changed.tv_sec == o.changed.tv_sec &&
               changed.tv_nsec == o.changed.tv_nsec;
    }
};

DirectoryIdentity identity_of(const fs::path& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return {};
    return {st.st_dev, st.st_ino, st.st_ctim};
}

}  // namespace

// A load that overlaps a save (--eval while training saves) may read the old manifest and a
// new array, and find them mismatched: a checkpoint replaced while it was read is read again,
// so that only a checkpoint corrupt as it stands is reported as one.
Checkpoint load_checkpoint(const fs::path& dir_in) {
    return filesystem_errors_as_io("load_checkpoint", dir_in, [&] { return load_checkpoint_retried(dir_in); });
}

namespace {

Checkpoint load_checkpoint_retried(const fs::path& dir_in) {
    const fs::path dir = checkpoint_directory(dir_in);
    constexpr int attempts = 10;
    for (int attempt = 1;; ++attempt) {
        const auto before = identity_of(dir);
        try {
            return load_checkpoint_once(dir_in);
        } catch (const DataError&) {
            if (attempt == attempts || identity_of(dir) == before) throw;
        }
    }
}

}  // namespace

}  // namespace nn
