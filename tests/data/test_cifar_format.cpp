#include "cifar_format.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>

#include "format_error.hpp"
#include "temp_folder.hpp"

using namespace flare::cifar;
using flare::testing::read_bytes;
using flare::testing::TempFolder;
static const auto& error_of = flare::testing::format_error_of;
using flare::testing::write_bytes;

namespace {

// n images with label i % 10 and pixel bytes that differ per image and position.
CifarImages numbered_images(std::size_t n) {
  CifarImages images;
  for (std::size_t i = 0; i < n; ++i) {
    images.labels.push_back(static_cast<std::uint8_t>(i % kNumClasses));
    for (std::size_t p = 0; p < kImageBytes; ++p) {
      images.pixels.push_back(static_cast<std::uint8_t>((i * 31 + p * 7) & 0xFF));
    }
  }
  return images;
}

void write_set(const std::filesystem::path& dir, std::size_t per_file) {
  for (int b = 1; b <= 5; ++b) {
    write_cifar_file(dir / ("data_batch_" + std::to_string(b) + ".bin"), numbered_images(per_file));
  }
  write_cifar_file(dir / "test_batch.bin", numbered_images(per_file));
}

}  // namespace

TEST_CASE("written images read back with the same labels and pixels") {
  TempFolder dir;
  const auto images = numbered_images(7);
  write_cifar_file(dir / "batch.bin", images);
  CHECK(std::filesystem::file_size(dir / "batch.bin") == 7 * kRecordBytes);
  CHECK(dir.entries() == std::vector<std::string>{"batch.bin"});  // no temp file left
  const auto back = read_cifar_files({dir / "batch.bin"});
  CHECK(back.size() == 7);
  CHECK(back.labels == images.labels);
  CHECK(back.pixels == images.pixels);
}

TEST_CASE("a record is one label byte followed by the R, G and B planes") {
  TempFolder dir;
  std::string record(kRecordBytes, '\0');
  record[0] = 3;
  record[1] = 10;                  // R at (0, 0)
  record[1 + 1024 + 33] = 20;      // G at row 1, column 1
  record[1 + 2048 + 1023] = 30;    // B at (31, 31)
  write_bytes(dir / "one.bin", record);
  const auto images = read_cifar_files({dir / "one.bin"});
  REQUIRE(images.size() == 1);
  CHECK(images.labels[0] == 3);
  CHECK(images.pixels[0] == 10);
  CHECK(images.pixels[1024 + 33] == 20);
  CHECK(images.pixels[3071] == 30);
  write_cifar_file(dir / "again.bin", images);
  CHECK(read_bytes(dir / "again.bin") == record);
}

TEST_CASE("several files are read in the order given") {
  TempFolder dir;
  auto a = numbered_images(2), b = numbered_images(3);
  b.labels = {9, 8, 7};
  write_cifar_file(dir / "a.bin", a);
  write_cifar_file(dir / "b.bin", b);
  const auto both = read_cifar_files({dir / "a.bin", dir / "b.bin"});
  CHECK(both.labels == std::vector<std::uint8_t>{0, 1, 9, 8, 7});
  CHECK(std::equal(b.pixels.begin(), b.pixels.end(), both.pixels.begin() + 2 * kImageBytes));
}

TEST_CASE("the training set is the five batches in order and the test set its own file") {
  TempFolder dir;
  write_set(dir.path(), 3);
  CHECK(read_training_set(dir.path()).size() == 15);
  CHECK(read_test_set(dir.path()).size() == 3);
}

TEST_CASE("damaged files are rejected naming the file and the problem") {
  TempFolder dir;
  const auto file = dir / "data_batch_1.bin";
  write_cifar_file(file, numbered_images(3));
  const std::string good = read_bytes(file);

  write_bytes(file, good.substr(0, good.size() - 100));  // truncated inside record 3
  auto message = error_of([&] { read_cifar_files({file}); });
  CHECK_MESSAGE(message.find(file.string()) != std::string::npos, message);
  CHECK_MESSAGE(message.find("9119 bytes") != std::string::npos, message);
  CHECK_MESSAGE(message.find("2 records + 2973 trailing bytes") != std::string::npos, message);

  write_bytes(file, good + "xyz");
  message = error_of([&] { read_cifar_files({file}); });
  CHECK_MESSAGE(message.find("3 records + 3 trailing bytes") != std::string::npos, message);

  write_bytes(file, "");
  message = error_of([&] { read_cifar_files({file}); });
  CHECK_MESSAGE(message.find(file.string() + ": file is empty") != std::string::npos, message);

  std::string bad_label = good;
  bad_label[2 * kRecordBytes] = 10;
  write_bytes(file, bad_label);
  message = error_of([&] { read_cifar_files({file}); });
  CHECK_MESSAGE(message.find(file.string()) != std::string::npos, message);
  CHECK_MESSAGE(message.find("record 2 has label 10") != std::string::npos, message);

  message = error_of([&] { read_cifar_files({dir / "nope.bin"}); });
  CHECK_MESSAGE(message.find((dir / "nope.bin").string()) != std::string::npos, message);
}

TEST_CASE("a training set with missing batches names every missing file") {
  TempFolder dir;
  write_set(dir.path(), 1);
  std::filesystem::remove(dir / "data_batch_2.bin");
  std::filesystem::remove(dir / "data_batch_5.bin");
  const auto message = error_of([&] { read_training_set(dir.path()); });
  CHECK_MESSAGE(message.find(dir.path().string()) != std::string::npos, message);
  CHECK_MESSAGE(message.find("data_batch_2.bin, data_batch_5.bin") != std::string::npos, message);
  CHECK_MESSAGE(message.find("data_batch_1.bin") == std::string::npos, message);

  std::filesystem::remove(dir / "test_batch.bin");
  CHECK(error_of([&] { read_test_set(dir.path()); }).find("test_batch.bin") != std::string::npos);
}

TEST_CASE("inconsistent images are refused before anything is written") {
  TempFolder dir;
  auto images = numbered_images(2);
  images.pixels.pop_back();
  CHECK(error_of([&] { write_cifar_file(dir / "x.bin", images); }).find("pixel bytes") !=
        std::string::npos);
  images = numbered_images(2);
  images.labels[1] = 12;
  CHECK(error_of([&] { write_cifar_file(dir / "x.bin", images); }).find("label 12") !=
        std::string::npos);
  CHECK(dir.entries().empty());
}

TEST_CASE("a folder without flare-data.json is described as CIFAR-10-format data of unknown origin") {
  TempFolder dir;
  write_set(dir.path(), 1);
  CHECK(describe_data_source(dir.path()) ==
        "CIFAR-10-format data, origin unknown (no flare-data.json), in " + dir.path().string());
}

// flare-data.json as prepare-data.sh writes it after a verified download, the
// checksums computed by coreutils' sha256sum (an independent implementation).
void write_official_provenance(const std::filesystem::path& dir) {
  std::string sums;
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    const std::string command = "sha256sum '" + (dir / name).string() + "'";
    std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), pclose);
    REQUIRE(pipe);
    char hex[65] = {};
    REQUIRE(std::fread(hex, 1, 64, pipe.get()) == 64);
    sums += std::string(sums.empty() ? "" : ", ") + "\"" + name + "\": \"" + hex + "\"";
  }
  std::ofstream(dir / "flare-data.json")
      << R"({"source": "official", "archive_md5": "c32a1d4ab5d03f1284b67883e8d87530", "sha256": {)"
      << sums << "}}";
}

TEST_CASE("the official release is named only while every file has its recorded checksum") {
  TempFolder dir;
  write_set(dir.path(), 2);
  write_official_provenance(dir.path());
  CHECK(describe_data_source(dir.path()) ==
        "CIFAR-10 (official binary release, archive MD5 c32a1d4ab5d03f1284b67883e8d87530, files "
        "unchanged since) in " + dir.path().string());

  auto images = numbered_images(2);
  images.labels[0] = static_cast<std::uint8_t>((images.labels[0] + 1) % 10);
  write_cifar_file(dir / "data_batch_3.bin", images);
  CHECK(describe_data_source(dir.path()) ==
        "CIFAR-10-format data, origin unknown (data_batch_3.bin differs from the checksum "
        "recorded at download), in " + dir.path().string());

  write_official_provenance(dir.path());  // as if that file had been downloaded
  std::filesystem::remove(dir / "test_batch.bin");
  CHECK(describe_data_source(dir.path()) ==
        "CIFAR-10-format data, origin unknown (test_batch.bin is missing), in " +
            dir.path().string());
}
