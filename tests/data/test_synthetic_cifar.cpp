#include <doctest/doctest.h>

#include <array>
#include <nlohmann/json.hpp>

#include "cifar_format.hpp"
#include "temp_folder.hpp"

using namespace flare::cifar;
using flare::testing::read_bytes;
using flare::testing::TempFolder;

namespace {

const char* const kFiles[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                              "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

std::array<std::size_t, kNumClasses> class_counts(const CifarImages& images) {
  std::array<std::size_t, kNumClasses> counts{};
  for (auto label : images.labels) ++counts.at(label);
  return counts;
}

// Accuracy on `test` of assigning each image the class whose mean training
// image is nearest (squared distance over all pixels).
double nearest_class_mean_accuracy(const CifarImages& train, const CifarImages& test) {
  std::vector<double> means(kNumClasses * kImageBytes, 0.0);
  const auto counts = class_counts(train);
  for (std::size_t i = 0; i < train.size(); ++i) {
    for (std::size_t p = 0; p < kImageBytes; ++p) {
      means[train.labels[i] * kImageBytes + p] += train.pixels[i * kImageBytes + p];
    }
  }
  for (int c = 0; c < kNumClasses; ++c) {
    for (std::size_t p = 0; p < kImageBytes; ++p) means[c * kImageBytes + p] /= counts[c];
  }
  std::size_t correct = 0;
  for (std::size_t i = 0; i < test.size(); ++i) {
    int best = 0;
    double best_distance = 1e300;
    for (int c = 0; c < kNumClasses; ++c) {
      double d = 0;
      for (std::size_t p = 0; p < kImageBytes; ++p) {
        const double diff = test.pixels[i * kImageBytes + p] - means[c * kImageBytes + p];
        d += diff * diff;
      }
      if (d < best_distance) best_distance = d, best = c;
    }
    correct += best == test.labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

}  // namespace

TEST_CASE("the generator writes the CIFAR-10 layout with the training images split over five files") {
  TempFolder dir;
  generate_synthetic_cifar(dir.path(), {.train_images = 53, .test_images = 17, .seed = 3});
  const std::size_t per_file[] = {11, 11, 11, 10, 10, 17};
  for (int i = 0; i < 6; ++i) {
    INFO(kFiles[i]);
    CHECK(std::filesystem::file_size(dir / kFiles[i]) == per_file[i] * kRecordBytes);
  }
  CHECK(read_training_set(dir.path()).size() == 53);
  CHECK(read_test_set(dir.path()).size() == 17);

  const auto info = nlohmann::json::parse(read_bytes(dir / "flare-data.json"));
  CHECK(info["source"] == "synthetic");
  CHECK(info["seed"] == 3);
  CHECK(info["train_images"] == 53);
  CHECK(info["test_images"] == 17);
  CHECK(read_bytes(dir / "batches.meta.txt").starts_with("airplane\nautomobile\n"));
}

TEST_CASE("a synthetic set describes itself with its seed and sizes") {
  TempFolder dir;
  generate_synthetic_cifar(dir.path(), {.train_images = 10, .test_images = 2, .seed = 0});
  CHECK(describe_data_source(dir.path()) ==
        "synthetic CIFAR-10-format data (seed 0, 10 train / 2 test images) in " +
            dir.path().string());
}

TEST_CASE("the same seed gives identical bytes and another seed different ones") {
  TempFolder a, b, c;
  generate_synthetic_cifar(a.path(), {.train_images = 40, .test_images = 20, .seed = 7});
  generate_synthetic_cifar(b.path(), {.train_images = 40, .test_images = 20, .seed = 7});
  generate_synthetic_cifar(c.path(), {.train_images = 40, .test_images = 20, .seed = 8});
  for (const char* file : kFiles) {
    INFO(file);
    CHECK(read_bytes(a / file) == read_bytes(b / file));
    CHECK(read_bytes(a / file) != read_bytes(c / file));
  }
}

TEST_CASE("classes are balanced in both splits") {
  TempFolder dir;
  generate_synthetic_cifar(dir.path(), {.train_images = 1000, .test_images = 200, .seed = 1});
  for (auto n : class_counts(read_training_set(dir.path()))) CHECK(n == 100);
  for (auto n : class_counts(read_test_set(dir.path()))) CHECK(n == 20);
}

TEST_CASE("images use the pixel range and are not copies of each other") {
  TempFolder dir;
  generate_synthetic_cifar(dir.path(), {.train_images = 20, .test_images = 10, .seed = 0});
  const auto test = read_test_set(dir.path());
  std::array<std::size_t, 256> histogram{};
  for (auto v : test.pixels) ++histogram[v];
  std::size_t used = 0;
  for (auto n : histogram) used += n > 0;
  CHECK(used > 200);
  for (std::size_t i = 1; i < test.size(); ++i) {
    CHECK(!std::equal(test.pixels.begin(), test.pixels.begin() + kImageBytes,
                      test.pixels.begin() + i * kImageBytes));
  }
}

TEST_CASE("the classes are learnable but a nearest-class-mean classifier is far from perfect") {
  TempFolder dir;
  generate_synthetic_cifar(dir.path(), {.train_images = 2000, .test_images = 1000, .seed = 0});
  const double accuracy =
      nearest_class_mean_accuracy(read_training_set(dir.path()), read_test_set(dir.path()));
  MESSAGE("nearest-class-mean test accuracy: ", accuracy);
  CHECK_MESSAGE(accuracy > 0.15, "expected well above chance (0.10), found ", accuracy);
  CHECK_MESSAGE(accuracy < 0.60, "expected far from perfect, found ", accuracy);
}

TEST_CASE("a spec too small for five batch files is refused") {
  TempFolder dir;
  CHECK_THROWS_AS(generate_synthetic_cifar(dir.path(), {.train_images = 4, .test_images = 1}),
                  std::invalid_argument);
  CHECK_THROWS_AS(generate_synthetic_cifar(dir.path(), {.train_images = 5, .test_images = 0}),
                  std::invalid_argument);
}
