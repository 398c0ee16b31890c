#include "storage/safetensors.hpp"

#include <flare/plugin.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "storage/atomic_file.hpp"

namespace flare::storage {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors is little-endian; a big-endian host needs byte swaps here");

// The reference implementation refuses larger headers; so do we, before allocating.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeName {
  const char* name;
  std::uint8_t code;
  std::uint8_t bits;
};

constexpr DtypeName kDtypes[] = {
    {"F64", kDLFloat, 64}, {"F32", kDLFloat, 32},  {"F16", kDLFloat, 16},
    {"BF16", kDLBfloat, 16}, {"I64", kDLInt, 64},  {"I32", kDLInt, 32},
    {"I16", kDLInt, 16},   {"I8", kDLInt, 8},      {"U64", kDLUInt, 64},
    {"U32", kDLUInt, 32},  {"U16", kDLUInt, 16},   {"U8", kDLUInt, 8},
    {"BOOL", kFlareDLBool, 8},
};

std::optional<DLDataType> dtype_from_name(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return DLDataType{d.code, d.bits, 1};
  }
  return std::nullopt;
}

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& problem) {
  throw StorageError(file.string() + ": " + problem);
}

// Bytes of a dense tensor, or nullopt on overflow.
std::optional<std::uint64_t> byte_count(std::span<const std::int64_t> shape, DLDataType dtype) {
  std::uint64_t n = dtype.bits / 8;
  for (auto dim : shape) {
    if (dim < 0 || __builtin_mul_overflow(n, static_cast<std::uint64_t>(dim), &n)) {
      return std::nullopt;
    }
  }
  return n;
}

// A header value quoted in an error message: one level deep and about 80
// characters long at most. dump() recurses once per level, and a crafted
// header can nest arrays a million deep: a stack overflow, not an error.
std::string excerpt(const nlohmann::json& value) {
  if (!value.is_structured()) return value.dump();
  std::string items;
  for (auto item = value.begin(); item != value.end(); ++item) {
    if (items.size() > 80) {
      items += ",...";
      break;
    }
    if (!items.empty()) items += ',';
    if (value.is_object()) items += nlohmann::json(item.key()).dump() + ':';
    items += item->is_array() ? "[...]" : item->is_object() ? "{...}" : item->dump();
  }
  return value.is_array() ? '[' + items + ']' : '{' + items + '}';
}

struct HeaderEntry {
  tensor::OwnedTensor tensor;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

HeaderEntry parse_entry(const std::filesystem::path& file, const std::string& name,
                        const nlohmann::json& value) {
  auto bad = [&](const std::string& what) { fail(file, "tensor '" + name + "': " + what); };
  if (!value.is_object()) bad("header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) bad(std::string("header entry has no \"") + key + "\"");
  }
  HeaderEntry e;
  e.tensor.name = name;
  const auto& dtype = value["dtype"];
  if (!dtype.is_string()) bad("\"dtype\" is not a string");
  auto parsed = dtype_from_name(dtype.get<std::string>());
  if (!parsed) bad("unknown dtype \"" + dtype.get<std::string>() + "\"");
  e.tensor.dtype = *parsed;
  const auto& shape = value["shape"];
  if (!shape.is_array()) bad("\"shape\" is not an array");
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned())
      bad("\"shape\" " + excerpt(shape) + " holds a non-natural number");
    auto d = dim.get<std::uint64_t>();
    if (d > static_cast<std::uint64_t>(INT64_MAX)) bad("dimension " + dim.dump() + " is too large");
    e.tensor.shape.push_back(static_cast<std::int64_t>(d));
  }
  const auto& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    bad("\"data_offsets\" is not [begin, end]: " + excerpt(offsets));
  }
  e.begin = offsets[0].get<std::uint64_t>();
  e.end = offsets[1].get<std::uint64_t>();
  if (e.end < e.begin) bad("\"data_offsets\" end before begin: " + offsets.dump());
  auto expected = byte_count(e.tensor.shape, e.tensor.dtype);
  if (!expected) bad("shape " + describe_shape(e.tensor.shape) + " overflows");
  if (*expected != e.end - e.begin) {
    bad("shape " + describe_shape(e.tensor.shape) + " of " + dtype.get<std::string>() +
        " needs " + std::to_string(*expected) + " bytes but data_offsets " + offsets.dump() +
        " hold " + std::to_string(e.end - e.begin));
  }
  return e;
}

}  // namespace

std::string safetensors_dtype_name(DLDataType dtype) {
  if (dtype.lanes == 1) {
    for (const auto& d : kDtypes) {
      if (d.code == dtype.code && d.bits == dtype.bits) return d.name;
    }
  }
  throw StorageError("dtype (code " + std::to_string(dtype.code) + ", bits " +
                     std::to_string(dtype.bits) + ", lanes " + std::to_string(dtype.lanes) +
                     ") has no safetensors equivalent");
}

SafetensorsParts safetensors_parts(std::span<const flare_named_tensor> tensors,
                                   const std::map<std::string, std::string>& metadata,
                                   const std::filesystem::path& file) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::set<std::string> names;
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> sizes;
  for (const auto& named : tensors) {
    const DLTensor& t = named.tensor;
    std::string name = named.name ? named.name : "";
    auto bad = [&](const std::string& what) { fail(file, "tensor '" + name + "': " + what); };
    if (name.empty()) fail(file, "a tensor has no name");
    if (name == kMetadataKey) bad("the name is reserved for metadata");
    if (!names.insert(name).second) bad("the name appears twice");
    if (t.device.device_type != kDLCPU) bad("not on the CPU");
    if (t.ndim < 0 || (t.ndim > 0 && t.shape == nullptr)) bad("no shape");
    std::span<const std::int64_t> shape(t.shape, static_cast<std::size_t>(t.ndim));
    if (!flare::is_row_major(t)) bad("not dense row-major (strided view)");
    std::string dtype;
    try {
      dtype = safetensors_dtype_name(t.dtype);
    } catch (const StorageError& e) {
      bad(e.what());
    }
    auto bytes = byte_count(shape, t.dtype);
    if (!bytes) bad("shape " + describe_shape(shape) + " is negative or overflows");
    if (*bytes > 0 && t.data == nullptr) bad("no data");
    header[name] = {{"dtype", dtype},
                    {"shape", std::vector<std::int64_t>(shape.begin(), shape.end())},
                    {"data_offsets", {offset, offset + *bytes}}};
    offset += *bytes;
    sizes.push_back(*bytes);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the byte buffer 8-byte aligned
  std::uint64_t length = text.size();
  std::byte prefix[8];
  std::memcpy(prefix, &length, sizeof prefix);  // little-endian host (static_assert above)

  SafetensorsParts parts;
  parts.head.assign(reinterpret_cast<const char*>(prefix), sizeof prefix);
  parts.head += text;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const DLTensor& t = tensors[i].tensor;
    if (sizes[i] == 0) continue;
    auto* begin = static_cast<const std::byte*>(t.data) + t.byte_offset;
    parts.bodies.emplace_back(begin, sizes[i]);
  }
  return parts;
}

void save_safetensors(const std::filesystem::path& file,
                      std::span<const flare_named_tensor> tensors,
                      const std::map<std::string, std::string>& metadata) {
  auto parts = safetensors_parts(tensors, metadata, file);
  AtomicFile out(file);
  out.write(parts.head);
  for (auto body : parts.bodies) out.write(body);
  out.commit();
}

SafetensorsFile load_safetensors(const std::filesystem::path& file) {
  std::error_code ec;
  auto file_size = std::filesystem::file_size(file, ec);
  if (ec) fail(file, "cannot read: " + ec.message());
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "cannot open");
  return read_safetensors(in, file_size, file);
}

SafetensorsFile read_safetensors(std::istream& in, std::uint64_t file_size,
                                 const std::filesystem::path& file) {
  if (file_size < 8) {
    fail(file, "file is " + std::to_string(file_size) +
                   " bytes, too short for the 8-byte header length");
  }
  std::uint64_t header_length = 0;
  in.read(reinterpret_cast<char*>(&header_length), 8);
  if (header_length > kMaxHeaderBytes || header_length > file_size - 8) {
    fail(file, "header length " + std::to_string(header_length) + " does not fit in a file of " +
                   std::to_string(file_size) + " bytes (truncated or not safetensors)");
  }
  std::string text(header_length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_length));
  if (!in) fail(file, "cannot read the header");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(file, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(file, "header is not a JSON object");

  SafetensorsFile result;
  std::vector<HeaderEntry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) fail(file, "\"__metadata__\" is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(file, "metadata '" + mk + "' is not a string");
        result.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(file, key, value));
  }

  // The tensors must tile the byte buffer exactly, in offset order.
  std::sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t buffer_size = file_size - 8 - header_length;
  std::uint64_t expected = 0;
  for (const auto& e : entries) {
    if (e.begin != expected) {
      fail(file, "tensor '" + e.tensor.name + "' starts at byte " + std::to_string(e.begin) +
                     " of the buffer, expected " + std::to_string(expected) +
                     (e.begin < expected ? " (overlaps the previous tensor)" : " (gap)"));
    }
    expected = e.end;
  }
  if (expected != buffer_size) {
    fail(file, "tensors cover " + std::to_string(expected) + " bytes but the buffer after the header has " +
                   std::to_string(buffer_size) + (expected > buffer_size ? " (truncated)" : " (trailing bytes)"));
  }

  for (auto& e : entries) {
    e.tensor.data.resize(e.end - e.begin);
    in.read(reinterpret_cast<char*>(e.tensor.data.data()),
            static_cast<std::streamsize>(e.tensor.data.size()));
    if (!in) fail(file, "cannot read the bytes of tensor '" + e.tensor.name + "'");
    result.tensors.push_back(std::move(e.tensor));
  }
  return result;
}

}  // namespace flare::storage
