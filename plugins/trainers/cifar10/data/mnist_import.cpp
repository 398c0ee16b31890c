#include "mnist_import.hpp"

#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

namespace flare::cifar {
namespace {

constexpr std::size_t kSide = 28;
constexpr std::size_t kPad = (32 - kSide) / 2;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& problem) {
  throw CifarFormatError(file.string() + ": " + problem);
}

std::vector<std::uint8_t> read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) fail(file, "cannot open this MNIST idx file");
  const auto size = static_cast<std::size_t>(in.tellg());
  std::vector<std::uint8_t> bytes(size);
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    fail(file, "cannot read " + std::to_string(size) + " bytes");
  return bytes;
}

std::uint32_t big_endian(const std::vector<std::uint8_t>& b, std::size_t at) {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 |
         std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

// The header's numbers after checking magic and size; `dims` of them.
std::vector<std::uint32_t> idx_header(const std::vector<std::uint8_t>& bytes,
                                      const std::filesystem::path& file, std::uint32_t magic,
                                      std::size_t dims) {
  const std::size_t header = 4 + 4 * dims;
  if (bytes.size() < header)
    fail(file, "too short for an idx header (" + std::to_string(bytes.size()) + " bytes)");
  if (big_endian(bytes, 0) != magic)
    fail(file, "not an MNIST idx file of this kind (magic " + std::to_string(big_endian(bytes, 0)) +
                   ", expected " + std::to_string(magic) + "; gunzip it first)");
  std::vector<std::uint32_t> numbers;
  std::size_t payload = 1;
  for (std::size_t d = 0; d < dims; ++d) {
    numbers.push_back(big_endian(bytes, 4 + 4 * d));
    payload *= numbers.back();
  }
  if (bytes.size() != header + payload)
    fail(file, std::to_string(bytes.size()) + " bytes, the header announces " +
                   std::to_string(header + payload));
  return numbers;
}

}  // namespace

CifarImages read_mnist_as_cifar(const std::filesystem::path& images_file,
                                const std::filesystem::path& labels_file) {
  const auto image_bytes = read_all(images_file);
  const auto label_bytes = read_all(labels_file);
  const auto image_dims = idx_header(image_bytes, images_file, 0x803, 3);
  const auto label_dims = idx_header(label_bytes, labels_file, 0x801, 1);
  if (image_dims[1] != kSide || image_dims[2] != kSide)
    fail(images_file, "images are " + std::to_string(image_dims[1]) + "x" +
                          std::to_string(image_dims[2]) + ", MNIST's are 28x28");
  if (image_dims[0] != label_dims[0])
    fail(labels_file, std::to_string(label_dims[0]) + " labels for " +
                          std::to_string(image_dims[0]) + " images in " + images_file.string());
  CifarImages out;
  const std::size_t n = image_dims[0];
  out.labels.assign(label_bytes.begin() + 8, label_bytes.end());
  out.pixels.assign(n * kImageBytes, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (out.labels[i] >= kNumClasses)
      fail(labels_file, "label " + std::to_string(out.labels[i]) + " at " + std::to_string(i));
    const std::uint8_t* grey = image_bytes.data() + 16 + i * kSide * kSide;
    std::uint8_t* record = out.pixels.data() + i * kImageBytes;
    for (std::size_t plane = 0; plane < 3; ++plane)
      for (std::size_t row = 0; row < kSide; ++row)
        std::copy(grey + row * kSide, grey + (row + 1) * kSide,
                  record + plane * 1024 + (row + kPad) * 32 + kPad);
  }
  return out;
}

void write_mnist_as_cifar(const std::filesystem::path& dir, const CifarImages& images,
                          const MnistSplit& split, const std::filesystem::path& images_file,
                          const std::filesystem::path& labels_file) {
  if (split.test_images < 1 || images.size() < split.test_images + 5)
    throw std::invalid_argument("MNIST as CIFAR-10 needs at least 5 training images and 1 test "
                                "image; " + std::to_string(images.size()) + " images, " +
                                std::to_string(split.test_images) + " for testing");
  std::filesystem::create_directories(dir);
  const std::size_t train = images.size() - split.test_images;
  const auto slice = [&](std::size_t begin, std::size_t end) {
    CifarImages part;
    part.labels.assign(images.labels.begin() + begin, images.labels.begin() + end);
    part.pixels.assign(images.pixels.begin() + begin * kImageBytes,
                       images.pixels.begin() + end * kImageBytes);
    return part;
  };
  std::size_t begin = 0;
  for (std::size_t b = 0; b < 5; ++b) {
    const std::size_t count = train / 5 + (b < train % 5 ? 1 : 0);
    write_cifar_file(dir / ("data_batch_" + std::to_string(b + 1) + ".bin"),
                     slice(begin, begin + count));
    begin += count;
  }
  write_cifar_file(dir / "test_batch.bin", slice(train, images.size()));
  std::ofstream(dir / "batches.meta.txt") << "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  // Written last: its presence means the set is complete.
  nlohmann::ordered_json info = {{"source", "mnist"},
                                 {"images_file", images_file.filename().string()},
                                 {"labels_file", labels_file.filename().string()},
                                 {"images_sha256", sha256_of(images_file)},
                                 {"labels_sha256", sha256_of(labels_file)},
                                 {"train_images", train},
                                 {"test_images", split.test_images}};
  std::ofstream(dir / "flare-data.json") << info.dump(2) << '\n';
}

}  // namespace flare::cifar
