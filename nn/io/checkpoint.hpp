#pragma once
// A checkpoint is a directory that NumPy can read without us:
//   manifest.json   format version, the caller's metadata (strings), and for every array
//                   its file, dtype, shape, byte count and CRC32; last, manifest_crc32:
//                   the CRC32 of every manifest byte before that member
//   <name>.npy      one array per file, in its own dtype (float32 or float64), so a float
//                   model round-trips bit for bit
// Saving is atomic as a whole: everything is written and fsynced in a fresh directory
// beside the target, which is then exchanged with the old checkpoint in one rename; a
// crash at any moment leaves the old or the new checkpoint, never a mix. Loading verifies
// every file against the manifest and throws nn::DataError naming the file at fault.
// Nothing a user saved is lost: a save replaces only a complete, valid checkpoint holding
// nothing but its own files, and deletes only those files. Arrays must be finite.
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <variant>

#include <xtensor/xtensor.hpp>

#include "nn/data_error.hpp"

namespace nn {

inline constexpr int checkpoint_format_version = 1;

// The longest array name a save takes: its file "<name>.npy" is written as
// ".<name>.npy.tmp-XXXXXX" first, and a file name takes at most 255 bytes. A Module's full
// names are held to it when registered.
inline constexpr std::size_t max_array_name_length = 255 - std::size_t(16);

using CheckpointArray = std::variant<xt::xtensor<float, 2>, xt::xtensor<double, 2>>;

struct Checkpoint {
    // Free-form: layer sizes, activations, epoch, optimizer, hyper-parameters... The caller
    // chooses keys and formats values; they come back exactly as given.
    std::map<std::string, std::string> meta;
    // Names become file names: letters, digits, '_', '-', '.', not starting with '.', at most
    // max_array_name_length characters.
    std::map<std::string, CheckpointArray> arrays;

    // The array `name` as T; DataError if it is absent or stored in the other dtype.
    template <class T>
    const xt::xtensor<T, 2>& array(const std::string& name) const {
        const auto it = arrays.find(name);
        if (it == arrays.end()) throw DataError("checkpoint has no array named '" + name + "'");
        if (const auto* a = std::get_if<xt::xtensor<T, 2>>(&it->second)) return *a;
        throw DataError("checkpoint array '" + name + "' is stored as " +
                        (std::holds_alternative<xt::xtensor<float, 2>>(it->second) ? "float32"
                                                                                    : "float64") +
                        ", not the type requested");
    }
};

// The directory save_checkpoint, load_checkpoint and check_checkpoint_target use for `dir`: as
// the kernel resolves it ("link/../ckpt" is beside what the link points to, not "./ckpt"), with
// trailing "/" and "." taken off, and a symlink or ".." at the end resolved to the real
// directory. autodiff::Error for an empty path.
std::filesystem::path checkpoint_directory(const std::filesystem::path& dir);

// Writes `checkpoint` to the directory `dir`, replacing any checkpoint already there
// atomically. Refuses (nn::IoError naming `dir` and why) to replace a `dir` that
// exists and is not empty, unless it is a complete tapegrad checkpoint (its manifest parses
// and matches its manifest_crc32, every file it names is there) holding no other file: the
// files that are not its own are named in the message, never deleted. A symlink `dir` is
// followed and kept. Temporary directories left beside `dir` by a save that was killed are
// removed. On file systems without an atomic exchange (NFS, FUSE) the old checkpoint is parked
// beside `dir` as ".<name>.previous-<pid>-XXXXXX" for a moment; if a kill leaves it there, the
// next save puts it back (no `dir`) or removes its files (a valid `dir`). Nothing else beside
// `dir`, "<dir>.previous" included, is ever moved or removed. Throws autodiff::Error for an
// array name unfit for a file name, for an array holding NaN or Inf (naming it, its row and
// column), and for metadata that is not UTF-8. Files and directories get the modes the user's
// umask gives.
void save_checkpoint(const std::filesystem::path& dir, const Checkpoint& checkpoint);

// Throws what save_checkpoint(dir, ...) would throw about what is at `dir` now, without
// writing anything: lets a program check its output directory before hours of training.
void check_checkpoint_target(const std::filesystem::path& dir);

// Reads and verifies the checkpoint in `dir`, or, if there is no `dir`, the old one a save
// parked beside it (see save_checkpoint) and was killed before it put it back. DataError naming
// the file for: a missing directory, manifest or array file; a malformed manifest or an
// unsupported version; an array file whose size or CRC32 differs from the manifest (truncated
// or corrupted); a manifest whose own content differs from its manifest_crc32; an .npy whose
// dtype or shape disagrees with the manifest; an array holding NaN or Inf; an array name that
// is not a plain file name inside `dir`; a manifest, an array file that is not a regular file
// (a FIFO, a device) or is larger than the manifest says. Nothing is allocated beyond the
// files' sizes.
Checkpoint load_checkpoint(const std::filesystem::path& dir);

}  // namespace nn
