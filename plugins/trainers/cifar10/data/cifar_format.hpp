// CIFAR-10's binary format, and a generator of learnable synthetic data in it.
// A file is a run of 3073-byte records: 1 label byte (0..9), then a 32x32 image
// as three 1024-byte planes R, G, B, each row-major. A data set folder holds
// data_batch_1.bin .. data_batch_5.bin (training) and test_batch.bin; synthetic
// ones also hold flare-data.json saying so. No LibTorch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace flare::cifar {

constexpr std::size_t kImageBytes = 3072;   // 3 x 32 x 32, R, G, B planes
constexpr std::size_t kRecordBytes = 3073;  // 1 label byte + image
constexpr int kNumClasses = 10;

struct CifarImages {
  std::vector<std::uint8_t> labels;  // N, each 0..9
  std::vector<std::uint8_t> pixels;  // N * kImageBytes, record order
  std::size_t size() const { return labels.size(); }
};

class CifarFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads the records of `files`, in order. Throws CifarFormatError naming the
// file: missing, empty, size not a whole number of records, or a label > 9.
CifarImages read_cifar_files(const std::vector<std::filesystem::path>& files);
// Appends the records in `bytes`, the content of `file` (named in errors), to
// `images`, with read_cifar_files' checks. The CIFAR fuzzer's entry point.
void append_cifar_records(std::span<const std::uint8_t> bytes, const std::filesystem::path& file,
                          CifarImages& images);
// data_batch_1.bin .. data_batch_5.bin of `dir`; all five are required.
CifarImages read_training_set(const std::filesystem::path& dir);
// test_batch.bin of `dir`.
CifarImages read_test_set(const std::filesystem::path& dir);

struct CifarSetSize {
  std::size_t train = 0;  // records of data_batch_1.bin .. data_batch_5.bin
  std::size_t test = 0;   // records of test_batch.bin
};
// The records of `dir`'s training and test sets from the files' sizes alone
// (nothing is read): the checks read_training_set and read_test_set make
// before reading, for a check before the job starts. Throws CifarFormatError
// naming the file: missing, empty, or not a whole number of records (truncated).
CifarSetSize count_data_set(const std::filesystem::path& dir);

// Writes `images` as one CIFAR-10 binary file (through a temp file and a rename,
// so an interrupted write never leaves a short file under the final name).
// Throws CifarFormatError on inconsistent input or a failed write.
void write_cifar_file(const std::filesystem::path& file, const CifarImages& images);

// Hex SHA-256 of a file, streamed. Throws CifarFormatError when unreadable.
std::string sha256_of(const std::filesystem::path& file);

struct SyntheticSpec {
  std::size_t train_images = 50000;
  std::size_t test_images = 10000;
  std::uint64_t seed = 0;
};

// Writes a synthetic data set in the CIFAR-10 layout into `dir` (created if
// needed): data_batch_1..5.bin (the training images split evenly), test_batch.bin,
// batches.meta.txt (class names) and flare-data.json {"source": "synthetic",
// "seed", "train_images", "test_images"}. Classes are balanced and learnable
// but not trivially so. The bytes depend only on the spec, on every platform.
// Needs train_images >= 5 and test_images >= 1.
void generate_synthetic_cifar(const std::filesystem::path& dir, const SyntheticSpec& spec);

// One line for logs, from the provenance file flare-data.json beside the data:
// "synthetic CIFAR-10-format data (seed 0, 10000 train / 2000 test images) in DIR";
// "CIFAR-10 (official binary release, archive MD5 ..., files unchanged since)
// in DIR" only while every batch file has the SHA-256 that prepare-data.sh
// recorded when it extracted them from the MD5-verified official archive; else
// "CIFAR-10-format data, origin unknown (why), in DIR". Reads every batch file
// of an official set (about 0.2 s for 180 MB).
std::string describe_data_source(const std::filesystem::path& dir);

}  // namespace flare::cifar
