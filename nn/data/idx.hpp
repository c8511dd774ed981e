#pragma once
/// @file
/// Readers for IDX, the format of MNIST and Fashion-MNIST: a big-endian header (magic,
/// dimension sizes) followed by raw unsigned bytes. Files may be gzip'd or plain; a gzip stream
/// must be whole (cut short, or followed by bytes that are not another gzip member, is an
/// error; concatenated members are read as one).
/// Every failure throws nn::DataError naming the file and what is wrong with it. Only regular
/// files are read, and no more data than the limits below.
#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "nn/data/dataset.hpp"

namespace nn {

/// The most data an IDX file may hold (2 GiB, forty times Fashion-MNIST's training images): a
/// corrupted header cannot make a loader allocate more.
inline constexpr std::size_t max_idx_data_bytes = std::size_t(1) << 31;
/// How many times its own size a gzip'd IDX file may expand (files under 64 KB count as 64 KB).
/// Image data compresses 2- to 5-fold; a header announcing more is refused before inflating.
inline constexpr std::size_t max_idx_gzip_expansion = 100;

/// Where Debian's dataset-fashion-mnist package installs the data.
inline constexpr const char* fashion_mnist_debian_dir = "/usr/share/datasets/fashion-mnist";

/// An idx3-ubyte image file (magic 0x00000803) as a pixels × images matrix, scaled to [0,1]
/// as pixel/255 (computed in double, then rounded to T, as NumPy's `(X / 255.).astype(T)`).
template <class T>
xt::xtensor<T, 2> load_idx_images(const std::string& path);

/// An idx1-ubyte label file (magic 0x00000801).
std::vector<std::size_t> load_idx_labels(const std::string& path);

/// Images and labels paired; checks the counts agree and every label is < class_names.size().
template <class T>
Dataset<T> load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                            const std::vector<std::string>& class_names);

template <class T>
struct TrainTest {
    Dataset<T> train;
    Dataset<T> test;
};

/// Fashion-MNIST from a directory holding the four files train-images-idx3-ubyte(.gz),
/// train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz).
template <class T>
TrainTest<T> load_fashion_mnist(const std::string& dir = fashion_mnist_debian_dir);

/// Only the 10000-example test split (cheaper when that is all one needs).
template <class T>
Dataset<T> load_fashion_mnist_test(const std::string& dir = fashion_mnist_debian_dir);

const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace nn
