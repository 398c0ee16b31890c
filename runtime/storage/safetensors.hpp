// Model files in the safetensors format (https://github.com/huggingface/safetensors),
// readable from Python with only json + numpy:
//   8-byte little-endian header length N | N bytes of JSON header, padded with
//   spaces to a multiple of 8 | the tensors' bytes, in header order, no gaps.
// Header: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..],
//          "data_offsets": [begin, end]}, ...}, offsets relative to the byte buffer.
#pragma once

#include <flare/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "storage/storage_error.hpp"
#include "tensor/owned_tensor.hpp"

namespace flare::storage {

// DLPack 0.6 has no boolean code; this is the value later DLPack releases gave
// kDLBool, so BOOL tensors keep their identity ({kFlareDLBool, 8, 1}).
inline constexpr std::uint8_t kFlareDLBool = 6;

// The header key of the file's metadata, which no tensor may have as its name.
inline constexpr const char* kMetadataKey = "__metadata__";

struct SafetensorsFile {
  std::vector<tensor::OwnedTensor> tensors;  // in file order
  std::map<std::string, std::string> metadata;
};

// The safetensors dtype name ("F32", "BF16", "BOOL", ...) of a DLPack dtype;
// throws StorageError for one the format cannot hold (lanes != 1, complex, ...).
std::string safetensors_dtype_name(DLDataType dtype);

// Writes `tensors` (dense CPU views: strides NULL or row-major; unique names) in
// the given order, atomically (see atomic_file.hpp). Throws StorageError.
void save_safetensors(const std::filesystem::path& file,
                      std::span<const flare_named_tensor> tensors,
                      const std::map<std::string, std::string>& metadata = {});

// What save_safetensors writes, unwritten: `head` (length prefix + JSON header)
// then `bodies` in order, views into the caller's tensors (valid while they
// live). For a writer that wraps the bytes, e.g. a round checkpoint that hashes
// them as it streams. Checks as save_safetensors does; messages name `file`.
struct SafetensorsParts {
  std::string head;
  std::vector<std::span<const std::byte>> bodies;
};
SafetensorsParts safetensors_parts(std::span<const flare_named_tensor> tensors,
                                   const std::map<std::string, std::string>& metadata,
                                   const std::filesystem::path& file);

// Reads and validates a whole file: header length vs file size, JSON shape of
// the header, known dtypes, shape x dtype size == byte count, offsets in range
// and tiling the buffer without gaps or overlaps. Throws StorageError naming
// the file and the problem.
SafetensorsFile load_safetensors(const std::filesystem::path& file);

// load_safetensors on the next `size` bytes of `in`, a whole file's content;
// messages name `file`. The file-less entry point (the safetensors fuzzer's).
SafetensorsFile read_safetensors(std::istream& in, std::uint64_t size,
                                 const std::filesystem::path& file);

}  // namespace flare::storage
