#pragma once
// What the checkpoint tests save and look for: a checkpoint small enough to write many times,
// telling saves apart by its epoch, and a directory's entries by name.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "nn/io/checkpoint.hpp"

namespace test_support {

// Its epoch is in the metadata and in W's last element, so either tells which save it was.
inline nn::Checkpoint small_checkpoint(const std::string& epoch) {
    nn::Checkpoint c;
    c.meta["epoch"] = epoch;
    c.arrays["W"] = xt::xtensor<float, 2>{{1.0f, 2.0f}, {3.0f, std::stof(epoch)}};
    return c;
}

// The names in `dir`, sorted.
inline std::vector<std::string> names_in(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace test_support
