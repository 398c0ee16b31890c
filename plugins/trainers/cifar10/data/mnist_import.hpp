// MNIST's idx files converted to the CIFAR-10 binary layout, so the cifar10
// trainer (and any trainer reading that layout) runs on real data where only
// MNIST is at hand: each 28x28 grey image is centred in 32x32 (2 pixels of
// black on every side) and its grey plane copied to R, G and B. No LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "cifar_format.hpp"

namespace flare::cifar {

// Reads an idx3 images file and an idx1 labels file (uncompressed, as
// yann.lecun.com serves them once gunzipped): big-endian magic 0x803 / 0x801,
// counts, then bytes. Throws CifarFormatError naming the file: missing, a
// wrong magic, images not 28x28, counts that differ or do not fit the file.
CifarImages read_mnist_as_cifar(const std::filesystem::path& images_file,
                                const std::filesystem::path& labels_file);

struct MnistSplit {
  std::size_t test_images = 2000;  // the last ones; the rest train
};

// Writes `images` (from read_mnist_as_cifar) into `dir` as a CIFAR-10-format
// set: data_batch_1..5.bin (the first size - test images, split evenly),
// test_batch.bin (the last test_images), and flare-data.json {"source":
// "mnist", the idx files' names and SHA-256, the counts}. Needs at least 5
// training images and 1 test image.
void write_mnist_as_cifar(const std::filesystem::path& dir, const CifarImages& images,
                          const MnistSplit& split, const std::filesystem::path& images_file,
                          const std::filesystem::path& labels_file);

}  // namespace flare::cifar
