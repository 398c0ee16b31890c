// MNIST's idx files (generated here) converted to the CIFAR-10 layout: the
// grey image centred in 32x32 and copied to R, G and B, labels kept, the last
// images for testing, provenance in flare-data.json; damaged files refused.
#include "mnist_import.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "format_error.hpp"
#include "temp_folder.hpp"

using namespace flare::cifar;
using flare::testing::TempFolder;
static const auto& error_of = flare::testing::format_error_of;
using flare::testing::write_bytes;

namespace {

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// n images where pixel (r, c) of image i is (i + r * 28 + c) % 251, label i % 10.
void write_mnist(const std::filesystem::path& images, const std::filesystem::path& labels,
                 std::uint32_t n, std::uint32_t side = 28, std::uint32_t label_count = 0) {
  std::vector<std::uint8_t> img, lab;
  put_u32(img, 0x803);
  put_u32(img, n);
  put_u32(img, side);
  put_u32(img, side);
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t p = 0; p < side * side; ++p) img.push_back(static_cast<std::uint8_t>((i + p) % 251));
  put_u32(lab, 0x801);
  put_u32(lab, label_count ? label_count : n);
  for (std::uint32_t i = 0; i < (label_count ? label_count : n); ++i)
    lab.push_back(static_cast<std::uint8_t>(i % 10));
  write_bytes(images, std::string(img.begin(), img.end()));
  write_bytes(labels, std::string(lab.begin(), lab.end()));
}

}  // namespace

TEST_CASE("an MNIST image becomes a CIFAR-10 record: centred in 32x32, grey in R, G and B") {
  TempFolder dir;
  write_mnist(dir.path() / "img", dir.path() / "lab", 3);
  const CifarImages images = read_mnist_as_cifar(dir.path() / "img", dir.path() / "lab");
  REQUIRE(images.size() == 3);
  CHECK(images.labels == std::vector<std::uint8_t>{0, 1, 2});
  const std::uint8_t* record = images.pixels.data() + 2 * kImageBytes;  // image 2
  for (int plane = 0; plane < 3; ++plane) {
    CHECK(record[plane * 1024 + 0] == 0);                  // border, top left
    CHECK(record[plane * 1024 + 31 * 32 + 31] == 0);       // border, bottom right
    CHECK(record[plane * 1024 + 2 * 32 + 2] == 2);         // (0, 0) of the 28x28
    CHECK(record[plane * 1024 + 29 * 32 + 29] == (2 + 27 * 28 + 27) % 251);  // (27, 27)
  }
}

TEST_CASE("the converted set holds the training images in five batches, the last ones for testing") {
  TempFolder dir;
  write_mnist(dir.path() / "img", dir.path() / "lab", 23);
  const auto images = read_mnist_as_cifar(dir.path() / "img", dir.path() / "lab");
  write_mnist_as_cifar(dir.path() / "set", images, {.test_images = 3}, dir.path() / "img",
                       dir.path() / "lab");
  const auto train = read_training_set(dir.path() / "set");
  const auto test = read_test_set(dir.path() / "set");
  CHECK(train.size() == 20);
  REQUIRE(test.size() == 3);
  CHECK(test.labels == std::vector<std::uint8_t>{0, 1, 2});  // images 20, 21, 22
  CHECK(describe_data_source(dir.path() / "set").starts_with("MNIST (img and lab, SHA-256 "));
  CHECK(describe_data_source(dir.path() / "set").find("20 train / 3 test images") !=
        std::string::npos);
}

TEST_CASE("damaged MNIST files are refused naming the file and the problem") {
  TempFolder dir;
  const auto img = dir.path() / "img";
  const auto lab = dir.path() / "lab";
  write_mnist(img, lab, 4, 27);
  CHECK(error_of([&] { read_mnist_as_cifar(img, lab); }).find("images are 27x27, MNIST's are 28x28") !=
        std::string::npos);
  write_mnist(img, lab, 4, 28, 5);
  CHECK(error_of([&] { read_mnist_as_cifar(img, lab); }).find("5 labels for 4 images") !=
        std::string::npos);
  write_mnist(img, lab, 4);
  CHECK(error_of([&] { read_mnist_as_cifar(lab, img); }).find("too short for an idx header") !=
        std::string::npos);
  CHECK(error_of([&] { read_mnist_as_cifar(img, img); }).find("(magic 2051, expected 2049") !=
        std::string::npos);
  const char header[] = "\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c";
  write_bytes(img, std::string(header, sizeof(header) - 1) + "short");
  CHECK(error_of([&] { read_mnist_as_cifar(img, lab); }).find("the header announces 1584") !=
        std::string::npos);
}
