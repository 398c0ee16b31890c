// flare-make-cifar: writes a synthetic CIFAR-10-format data set (see
// cifar_format.hpp), or converts MNIST's idx files to that format
// (mnist_import.hpp).
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "cifar_format.hpp"
#include "mnist_import.hpp"

namespace {

constexpr const char* kUsage =
    "usage: flare-make-cifar --out DIR [--train N] [--test N] [--seed S]\n"
    "       flare-make-cifar --out DIR --mnist IMAGES LABELS [--test N]\n"
    "  writes data_batch_1..5.bin, test_batch.bin, batches.meta.txt and flare-data.json:\n"
    "  synthetic data (defaults: --train 50000 --test 10000 --seed 0), or MNIST's idx\n"
    "  files (gunzipped) as 32x32 RGB, the last --test images (default 2000) for testing\n";

int usage_error(const std::string& message) {
  std::cerr << "flare-make-cifar: " << message << "\n" << kUsage;
  return 2;
}

bool parse_count(const char* text, std::uint64_t& value) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  return ec == std::errc() && ptr == end && ptr != text;
}

}  // namespace

int main(int argc, char** argv) {
  flare::cifar::SyntheticSpec spec;
  std::string out, mnist_images, mnist_labels;
  bool test_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--mnist") {
      if (i + 2 >= argc) return usage_error("--mnist needs two files: IMAGES LABELS");
      mnist_images = argv[++i];
      mnist_labels = argv[++i];
      continue;
    }
    if (arg != "--out" && arg != "--train" && arg != "--test" && arg != "--seed") {
      return usage_error("unknown option '" + arg + "'");
    }
    if (i + 1 >= argc) return usage_error(arg + " needs a value");
    const char* value = argv[++i];
    if (arg == "--out") {
      out = value;
      continue;
    }
    std::uint64_t number = 0;
    if (!parse_count(value, number)) return usage_error(arg + " needs a non-negative integer, got '" + value + "'");
    if (arg == "--train") spec.train_images = number;
    if (arg == "--test") {
      spec.test_images = number;
      test_given = true;
    }
    if (arg == "--seed") spec.seed = number;
  }
  if (out.empty()) return usage_error("--out DIR is required");
  if (!mnist_images.empty()) {
    try {
      flare::cifar::MnistSplit split;
      if (test_given) split.test_images = spec.test_images;
      const auto images = flare::cifar::read_mnist_as_cifar(mnist_images, mnist_labels);
      flare::cifar::write_mnist_as_cifar(out, images, split, mnist_images, mnist_labels);
      std::printf("wrote %s\n", flare::cifar::describe_data_source(out).c_str());
    } catch (const std::exception& e) {
      std::cerr << "flare-make-cifar: " << e.what() << "\n";
      return 1;
    }
    return 0;
  }
  if (spec.train_images < 5) return usage_error("--train must be at least 5 (one image per batch file)");
  if (spec.test_images < 1) return usage_error("--test must be at least 1");

  try {
    const auto start = std::chrono::steady_clock::now();
    flare::cifar::generate_synthetic_cifar(out, spec);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("wrote %s (%.2f s)\n", flare::cifar::describe_data_source(out).c_str(), took.count());
  } catch (const std::exception& e) {
    std::cerr << "flare-make-cifar: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
