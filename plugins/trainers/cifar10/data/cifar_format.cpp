#include "cifar_format.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

namespace flare::cifar {
namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& problem) {
  throw CifarFormatError(file.string() + ": " + problem);
}

std::vector<std::filesystem::path> training_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i <= 5; ++i) files.push_back(dir / ("data_batch_" + std::to_string(i) + ".bin"));
  return files;
}

void append_file(const std::filesystem::path& file, CifarImages& images) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) fail(file, "no such CIFAR-10 batch file");
  const auto bytes = std::filesystem::file_size(file, ec);
  if (ec) fail(file, "cannot read: " + ec.message());
  std::vector<std::uint8_t> raw(bytes);
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(bytes));
  if (!in) fail(file, "cannot read " + std::to_string(bytes) + " bytes");
  append_cifar_records(raw, file, images);
}

}  // namespace

void append_cifar_records(std::span<const std::uint8_t> bytes, const std::filesystem::path& file,
                          CifarImages& images) {
  if (bytes.empty()) fail(file, "file is empty");
  if (bytes.size() % kRecordBytes != 0) {
    fail(file, std::to_string(bytes.size()) + " bytes is not a whole number of " +
                   std::to_string(kRecordBytes) + "-byte records (" +
                   std::to_string(bytes.size() / kRecordBytes) + " records + " +
                   std::to_string(bytes.size() % kRecordBytes) +
                   " trailing bytes); truncated or not CIFAR-10");
  }
  const std::size_t count = bytes.size() / kRecordBytes;
  const std::size_t first = images.size();
  images.labels.resize(first + count);
  images.pixels.resize((first + count) * kImageBytes);
  for (std::size_t r = 0; r < count; ++r) {
    const std::uint8_t* record = bytes.data() + r * kRecordBytes;
    if (record[0] >= kNumClasses) {
      fail(file, "record " + std::to_string(r) + " has label " + std::to_string(record[0]) +
                     ", expected 0.." + std::to_string(kNumClasses - 1));
    }
    images.labels[first + r] = record[0];
    std::copy(record + 1, record + kRecordBytes, images.pixels.begin() + (first + r) * kImageBytes);
  }
}

CifarImages read_cifar_files(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw CifarFormatError("no CIFAR-10 batch files given");
  CifarImages images;
  for (const auto& file : files) append_file(file, images);
  return images;
}

CifarImages read_training_set(const std::filesystem::path& dir) {
  auto files = training_files(dir);
  std::string missing;
  for (const auto& file : files) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      missing += (missing.empty() ? "" : ", ") + file.filename().string();
    }
  }
  if (!missing.empty()) {
    fail(dir, "missing CIFAR-10 training batches: " + missing +
                  " (scripts/prepare-data.sh downloads or generates them)");
  }
  return read_cifar_files(files);
}

CifarImages read_test_set(const std::filesystem::path& dir) {
  return read_cifar_files({dir / "test_batch.bin"});
}

void write_cifar_file(const std::filesystem::path& file, const CifarImages& images) {
  if (images.pixels.size() != images.labels.size() * kImageBytes) {
    fail(file, "cannot write " + std::to_string(images.labels.size()) + " labels with " +
                   std::to_string(images.pixels.size()) + " pixel bytes (expected " +
                   std::to_string(images.labels.size() * kImageBytes) + ")");
  }
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (images.labels[i] >= kNumClasses) {
      fail(file, "cannot write label " + std::to_string(images.labels[i]) + " of image " +
                     std::to_string(i));
    }
  }
  auto temp = file;
  temp += ".partial";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail(file, "cannot create " + temp.string());
    std::vector<char> record(kRecordBytes);
    for (std::size_t i = 0; i < images.size(); ++i) {
      record[0] = static_cast<char>(images.labels[i]);
      std::copy_n(images.pixels.begin() + i * kImageBytes, kImageBytes, record.begin() + 1);
      out.write(record.data(), static_cast<std::streamsize>(record.size()));
    }
    out.close();
    if (!out) {
      std::filesystem::remove(temp);
      fail(file, "cannot write (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, file, ec);
  if (ec) fail(file, "cannot rename " + temp.string() + " onto it: " + ec.message());
}

std::string describe_data_source(const std::filesystem::path& dir) {
  const auto marker = dir / "flare-data.json";
  std::error_code ec;
  if (std::filesystem::exists(marker, ec)) {
    nlohmann::json info;
    try {
      info = nlohmann::json::parse(std::ifstream(marker));
      if (info.value("source", "") == "synthetic") {
        return "synthetic CIFAR-10-format data (seed " + std::to_string(info.at("seed").get<std::uint64_t>()) +
               ", " + std::to_string(info.at("train_images").get<std::uint64_t>()) + " train / " +
               std::to_string(info.at("test_images").get<std::uint64_t>()) + " test images) in " +
               dir.string();
      }
    } catch (const nlohmann::json::exception& e) {
      fail(marker, std::string("unreadable data description: ") + e.what());
    }
  }
  return "CIFAR-10 (official binary release) in " + dir.string();
}

}  // namespace flare::cifar
