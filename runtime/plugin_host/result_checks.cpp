#include "plugin_host/result_checks.hpp"

#include "tensor/owned_tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <set>

#include <unistd.h>

#include <flare/plugin.hpp>
#include <nlohmann/json.hpp>

namespace flare::host {

namespace {

constexpr size_t kMaxNameBytes = 4096;
constexpr int32_t kMaxDimensions = 64;
// More tensors than this is a garbage count, not a model.
constexpr size_t kMaxTensors = size_t{1} << 20;

std::string bytes_text(uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) value /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

// Plugin text quoted in a message: short, one line, printable.
std::string excerpt(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return "'" + out + (text.size() > 80 ? "...'" : "'");
}

bool printable_utf8(const std::string& text) {
  for (unsigned char c : text)
    if (c < 0x20 || c == 0x7f) return false;
  try {
    (void)nlohmann::json(text).dump();  // throws on invalid UTF-8
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  return true;
}

bool carried_dtype(DLDataType d) {
  if (d.lanes < 1) return false;
  switch (d.code) {
    case kDLInt:
    case kDLUInt: return d.bits == 8 || d.bits == 16 || d.bits == 32 || d.bits == 64;
    case kDLFloat: return d.bits == 16 || d.bits == 32 || d.bits == 64;
    case kDLBfloat: return d.bits == 16;
    case kDLComplex: return d.bits == 64 || d.bits == 128;
    default: return false;
  }
}

// The index of the first NaN or infinity among `count` IEEE values of
// `Bits` whose exponent field is `exponent` (all ones: not finite), or -1;
// `nan` says which it was (a NaN has mantissa bits set).
template <class Bits>
int64_t first_non_finite(const std::byte* data, uint64_t count, Bits exponent, bool* nan) {
  const Bits mantissa = static_cast<Bits>((exponent & static_cast<Bits>(~exponent + 1)) - 1);
  for (uint64_t i = 0; i < count; ++i) {
    Bits bits;
    std::memcpy(&bits, data + i * sizeof(Bits), sizeof(Bits));
    if ((bits & exponent) == exponent) {
      *nan = (bits & mantissa) != 0;
      return static_cast<int64_t>(i);
    }
  }
  return -1;
}

// Reads one byte of every page of [data, data + bytes): an invalid pointer
// faults here, inside the plugin call, rather than later in host code.
void touch(const std::byte* data, uint64_t bytes) {
  volatile std::byte sink{};
  for (uint64_t at = 0; at < bytes; at += 4096) sink = data[at];
  if (bytes > 0) sink = data[bytes - 1];
  (void)sink;
}

class TensorChecker {
 public:
  TensorChecker(const PluginCall& call, const char* what) : call_(call), what_(what) {}

  [[noreturn]] void refuse(const std::string& problem) const {
    call_.refuse(std::string(what_) + ": " + problem);
  }

  // Everything about one tensor but its values; returns its size in bytes.
  uint64_t check_form(const flare_named_tensor& t, size_t index) {
    if (!t.name) refuse("tensor " + std::to_string(index) + " has no name (NULL)");
    const size_t name_length = ::strnlen(t.name, kMaxNameBytes + 1);
    if (name_length == 0) refuse("tensor " + std::to_string(index) + " has an empty name");
    if (name_length > kMaxNameBytes)
      refuse("tensor " + std::to_string(index) + "'s name is longer than " +
             std::to_string(kMaxNameBytes) + " bytes");
    const std::string name(t.name, name_length);
    if (!printable_utf8(name))
      refuse("tensor " + std::to_string(index) + "'s name " + excerpt(name) +
             " is not printable UTF-8");
    if (!names_.insert(name).second) refuse("two tensors are named '" + name + "'");
    const std::string label = "tensor '" + name + "'";
    const DLTensor& d = t.tensor;
    if (d.device.device_type != kDLCPU)
      refuse(label + " is on device type " + std::to_string(d.device.device_type) +
             ", not in CPU memory");
    if (!carried_dtype(d.dtype))
      refuse(label + " has dtype " + describe_dtype(d.dtype) + ", which the host does not carry");
    if (d.ndim < 0 || d.ndim > kMaxDimensions)
      refuse(label + " has " + std::to_string(d.ndim) + " dimensions (at most " +
             std::to_string(kMaxDimensions) + ")");
    if (d.ndim > 0 && !d.shape)
      refuse(label + " has " + std::to_string(d.ndim) + " dimensions but no shape (NULL)");
    const std::span<const int64_t> shape(d.shape, static_cast<size_t>(d.ndim));
    uint64_t elements = 1;
    bool overflow = false;
    for (int64_t extent : shape) {
      if (extent < 0) refuse(label + " has a negative extent in its shape " + describe_shape(shape));
      overflow = overflow || __builtin_mul_overflow(elements, static_cast<uint64_t>(extent), &elements);
    }
    uint64_t bytes = 0;
    const uint64_t element_bytes = flare::element_bytes(d.dtype);
    overflow = overflow || __builtin_mul_overflow(elements, element_bytes, &bytes);
    if (overflow)
      refuse(label + " has shape " + describe_shape(shape) + ", whose size overflows 64 bits");
    const uint64_t memory = flare::tensor::machine_memory_bytes();
    if (bytes > memory || total_bytes_ + bytes > memory)
      refuse(label + " has shape " + describe_shape(shape) + " (" + bytes_text(bytes) + " of " +
             describe_dtype(d.dtype) + "), more than this machine's memory (" +
             bytes_text(memory) + ")");
    total_bytes_ += bytes;
    if (d.strides && !is_row_major(d))
      refuse(label + " is not dense and row-major (its strides are " +
             describe_shape({d.strides, static_cast<size_t>(d.ndim)}) + ")");
    if (bytes > 0 && !d.data) refuse(label + " of shape " + describe_shape(shape) + " has no data (NULL)");
    return bytes;
  }

  void check_layout(const flare_named_tensor* tensors, size_t count, const ModelLayout& expected) const {
    if (count != expected.size())
      refuse(std::to_string(count) + " tensors where the model has " +
             std::to_string(expected.size()));
    for (size_t i = 0; i < count; ++i) {
      const DLTensor& d = tensors[i].tensor;
      const TensorLayout& want = expected[i];
      const std::string label = "tensor " + std::to_string(i) + " '" + tensors[i].name + "'";
      if (tensors[i].name != want.name)
        refuse(label + " where the model has '" + want.name + "'");
      if (d.dtype.code != want.dtype.code || d.dtype.bits != want.dtype.bits ||
          d.dtype.lanes != want.dtype.lanes)
        refuse(label + " is " + describe_dtype(d.dtype) + ", the model's is " +
               describe_dtype(want.dtype));
      const std::span<const int64_t> shape(d.shape, static_cast<size_t>(d.ndim));
      if (!std::equal(shape.begin(), shape.end(), want.shape.begin(), want.shape.end()))
        refuse(label + " has shape " + describe_shape(shape) + ", the model's is " +
               describe_shape(want.shape));
    }
  }

  void check_values(const flare_named_tensor& t, uint64_t bytes) const {
    const DLTensor& d = t.tensor;
    const auto* data = static_cast<const std::byte*>(d.data) + d.byte_offset;
    if (bytes == 0) return;
    bool nan = false;
    int64_t at = -1;
    const bool floating = d.dtype.code == kDLFloat || d.dtype.code == kDLBfloat ||
                          d.dtype.code == kDLComplex;
    // A complex value is two floats of half its bits.
    const unsigned scalar_bits = d.dtype.code == kDLComplex ? d.dtype.bits / 2u : d.dtype.bits;
    const uint64_t scalars = bytes / (scalar_bits / 8u);
    if (floating && d.dtype.code == kDLBfloat) at = first_non_finite<uint16_t>(data, scalars, 0x7f80, &nan);
    else if (floating && scalar_bits == 16) at = first_non_finite<uint16_t>(data, scalars, 0x7c00, &nan);
    else if (floating && scalar_bits == 32) at = first_non_finite<uint32_t>(data, scalars, 0x7f800000u, &nan);
    else if (floating && scalar_bits == 64)
      at = first_non_finite<uint64_t>(data, scalars, 0x7ff0000000000000ull, &nan);
    else touch(data, bytes);
    if (at >= 0)
      refuse("tensor '" + std::string(t.name) + "' holds " + (nan ? "NaN" : "an infinity") +
             " (value " + std::to_string(at) + " of " + std::to_string(scalars) + ")");
  }

 private:
  const PluginCall& call_;
  const char* what_;
  std::set<std::string> names_;
  uint64_t total_bytes_ = 0;
};

}  // namespace

ModelLayout layout_of(std::span<const flare_named_tensor> model) {
  ModelLayout layout;
  layout.reserve(model.size());
  for (const auto& t : model)
    layout.push_back({t.name ? t.name : "", t.tensor.dtype,
                      std::vector<int64_t>(t.tensor.shape, t.tensor.shape + t.tensor.ndim)});
  return layout;
}

std::span<const flare_named_tensor> checked_tensors(const PluginCall& call, const char* what,
                                                    const flare_named_tensor* tensors,
                                                    size_t count, TensorRole role,
                                                    const ModelLayout* expected) {
  TensorChecker checker(call, what);
  if (count > 0 && !tensors)
    checker.refuse(std::to_string(count) + " tensors at NULL");
  if (role == TensorRole::Model && count == 0) checker.refuse("no tensors");
  if (count > kMaxTensors)
    checker.refuse(std::to_string(count) + " tensors, more than the " +
                   std::to_string(kMaxTensors) + " a model may have");
  std::vector<uint64_t> bytes(count);
  for (size_t i = 0; i < count; ++i) bytes[i] = checker.check_form(tensors[i], i);
  if (role == TensorRole::Model && expected) checker.check_layout(tensors, count, *expected);
  for (size_t i = 0; i < count; ++i) checker.check_values(tensors[i], bytes[i]);
  return {tensors, count};
}

std::string_view checked_json(const PluginCall& call, const char* what, const char* text,
                              JsonRole role) {
  const auto refuse = [&](const std::string& problem) {
    call.refuse(std::string(what) + " " + problem);
  };
  if (!text || !*text) {
    if (role == JsonRole::Evaluation) refuse(text ? "is empty" : "is missing (NULL)");
    return {};
  }
  const std::string_view view(text);
  const auto parsed = nlohmann::json::parse(view, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) refuse("is not JSON: " + excerpt(view));
  if (!parsed.is_object())
    refuse("is a JSON " + std::string(parsed.type_name()) + ", not an object: " + excerpt(view));
  if (role == JsonRole::Object) return view;
  for (const auto& [name, value] : parsed.items()) {
    const bool label = role == JsonRole::Evaluation && value.is_string() && name != "num_samples";
    // null: not measured (the SDK's loss of an empty split, or a NaN it dumped).
    const bool unmeasured = value.is_null() && name != "num_samples";
    if (!value.is_number() && !label && !unmeasured)
      refuse("gives " + excerpt(name) + " as a " + value.type_name() + " (" + excerpt(value.dump()) +
             "), not a number");
  }
  const auto samples = parsed.find("num_samples");
  if (role == JsonRole::Evaluation && samples != parsed.end() && samples->get<double>() < 0)
    refuse("gives a negative num_samples: " + samples->dump());
  return view;
}

void check_count(const PluginCall& call, const char* what, double value) {
  if (!std::isfinite(value) || value < 0)
    call.refuse(std::string(what) + " is " + std::to_string(value) +
                ", not a count (finite, at least 0)");
}

}  // namespace flare::host
