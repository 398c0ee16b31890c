#include "cifar_format.hpp"

#include <algorithm>
#include <fstream>
#include <memory>
#include <numeric>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

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

// Fails unless `bytes` of `file` are a whole, non-zero number of records.
std::size_t whole_records(std::uintmax_t bytes, const std::filesystem::path& file) {
  if (bytes == 0) fail(file, "file is empty");
  if (bytes % kRecordBytes != 0) {
    fail(file, std::to_string(bytes) + " bytes is not a whole number of " +
                   std::to_string(kRecordBytes) + "-byte records (" +
                   std::to_string(bytes / kRecordBytes) + " records + " +
                   std::to_string(bytes % kRecordBytes) + " trailing bytes); truncated or not CIFAR-10");
  }
  return static_cast<std::size_t>(bytes / kRecordBytes);
}

// The record count of `file`; fails unless it holds whole records.
std::size_t count_records(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) fail(file, "no such CIFAR-10 batch file");
  const auto bytes = std::filesystem::file_size(file, ec);
  if (ec) fail(file, "cannot read: " + ec.message());
  return whole_records(bytes, file);
}

// The five training batches of `dir`; fails naming every one that is missing.
std::vector<std::filesystem::path> present_training_files(const std::filesystem::path& dir) {
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
  return files;
}

// Checks the labels of `count` records at `raw` and puts them into images'
// labels and pixels from record `first` on (both already sized).
void copy_records(const std::uint8_t* raw, std::size_t count, const std::filesystem::path& file,
                  CifarImages& images, std::size_t first) {
  for (std::size_t r = 0; r < count; ++r) {
    const std::uint8_t* record = raw + r * kRecordBytes;
    if (record[0] >= kNumClasses) {
      fail(file, "record " + std::to_string(r) + " has label " + std::to_string(record[0]) +
                     ", expected 0.." + std::to_string(kNumClasses - 1));
    }
    images.labels[first + r] = record[0];
    std::copy(record + 1, record + kRecordBytes, images.pixels.begin() + (first + r) * kImageBytes);
  }
}

// Reads `count` records of `file` through `raw` (at least count records long)
// into images' labels and pixels from record `first` on.
void read_records(const std::filesystem::path& file, std::size_t count, std::uint8_t* raw,
                  CifarImages& images, std::size_t first) {
  const std::size_t bytes = count * kRecordBytes;
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(raw), static_cast<std::streamsize>(bytes));
  if (!in) fail(file, "cannot read " + std::to_string(bytes) + " bytes");
  copy_records(raw, count, file, images, first);
}

}  // namespace

void append_cifar_records(std::span<const std::uint8_t> bytes, const std::filesystem::path& file,
                          CifarImages& images) {
  const std::size_t count = whole_records(bytes.size(), file);
  const std::size_t first = images.size();
  images.labels.resize(first + count);
  images.pixels.resize((first + count) * kImageBytes);
  copy_records(bytes.data(), count, file, images, first);
}

CifarImages read_cifar_files(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw CifarFormatError("no CIFAR-10 batch files given");
  // Sized once and read through one buffer: growing the pixels file by file
  // copied and page-faulted three times the data (a third of a site's data load).
  std::vector<std::size_t> counts;
  for (const auto& file : files) counts.push_back(count_records(file));
  const std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
  CifarImages images;
  images.labels.resize(total);
  images.pixels.resize(total * kImageBytes);
  const auto largest = *std::max_element(counts.begin(), counts.end());
  const auto raw = std::make_unique_for_overwrite<std::uint8_t[]>(largest * kRecordBytes);
  std::size_t first = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    read_records(files[i], counts[i], raw.get(), images, first);
    first += counts[i];
  }
  return images;
}

CifarImages read_training_set(const std::filesystem::path& dir) {
  return read_cifar_files(present_training_files(dir));
}

CifarImages read_test_set(const std::filesystem::path& dir) {
  return read_cifar_files({dir / "test_batch.bin"});
}

CifarSetSize count_data_set(const std::filesystem::path& dir) {
  CifarSetSize size;
  for (const auto& file : present_training_files(dir)) size.train += count_records(file);
  size.test = count_records(dir / "test_batch.bin");
  return size;
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

std::string sha256_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "cannot open to check its checksum");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    fail(file, "cannot start a SHA-256 digest");
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[digest[i] >> 4];
    hex += kDigits[digest[i] & 15];
  }
  return hex;
}

namespace {

// Empty when every batch file has the checksum the provenance file recorded
// when it was extracted from the verified official archive; else what differs.
std::string official_checksum_mismatch(const std::filesystem::path& dir,
                                       const nlohmann::json& info) {
  const auto& recorded = info.at("sha256");
  auto files = training_files(dir);
  files.push_back(dir / "test_batch.bin");
  for (const auto& file : files) {
    const std::string name = file.filename().string();
    if (!recorded.contains(name)) return "no checksum recorded for " + name;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return name + " is missing";
    if (sha256_of(file) != recorded.at(name).get<std::string>())
      return name + " differs from the checksum recorded at download";
  }
  return "";
}

}  // namespace

std::string describe_data_source(const std::filesystem::path& dir) {
  const auto marker = dir / "flare-data.json";
  const std::string unknown = "CIFAR-10-format data, origin unknown";
  std::error_code ec;
  if (!std::filesystem::exists(marker, ec))
    return unknown + " (no flare-data.json), in " + dir.string();
  try {
    const nlohmann::json info = nlohmann::json::parse(std::ifstream(marker));
    const std::string source = info.value("source", "");
    if (source == "synthetic") {
      return "synthetic CIFAR-10-format data (seed " +
             std::to_string(info.at("seed").get<std::uint64_t>()) + ", " +
             std::to_string(info.at("train_images").get<std::uint64_t>()) + " train / " +
             std::to_string(info.at("test_images").get<std::uint64_t>()) + " test images) in " +
             dir.string();
    }
    if (source == "mnist") {
      return "MNIST (" + info.at("images_file").get<std::string>() + " and " +
             info.at("labels_file").get<std::string>() + ", SHA-256 " +
             info.at("images_sha256").get<std::string>().substr(0, 12) +
             "..., 28x28 grey centred in 32x32 RGB; " +
             std::to_string(info.at("train_images").get<std::uint64_t>()) + " train / " +
             std::to_string(info.at("test_images").get<std::uint64_t>()) + " test images) in " +
             dir.string();
    }
    if (source == "official") {
      const std::string mismatch = official_checksum_mismatch(dir, info);
      if (mismatch.empty())
        return "CIFAR-10 (official binary release, archive MD5 " +
               info.at("archive_md5").get<std::string>() + ", files unchanged since) in " +
               dir.string();
      return unknown + " (" + mismatch + "), in " + dir.string();
    }
    return unknown + " (flare-data.json names source '" + source + "'), in " + dir.string();
  } catch (const nlohmann::json::exception& e) {
    fail(marker, std::string("unreadable data description: ") + e.what());
  }
}

}  // namespace flare::cifar
