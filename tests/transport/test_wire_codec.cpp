// Float32 tensors as bfloat16, float16 and int8 on the wire, and back.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "jobspec/job_spec.hpp"
#include "transport/wire_codec.hpp"
#include "transport/wire_kernels.hpp"

using namespace flare::transport;

namespace {

constexpr WireEncoding kEncodings[] = {WireEncoding::Raw, WireEncoding::BFloat16,
                                       WireEncoding::Float16, WireEncoding::Int8Blockwise};
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<std::byte> encoded(WireEncoding encoding, const std::vector<float>& values) {
  std::vector<std::byte> wire(encoded_bytes(encoding, values.size()));
  encode(encoding, values.data(), values.size(), wire.data());
  return wire;
}

std::vector<float> round_trip(WireEncoding encoding, const std::vector<float>& values) {
  const auto wire = encoded(encoding, values);
  std::vector<float> back(values.size());
  decode(encoding, wire.data(), back.size(), back.data());
  return back;
}

float round_trip(WireEncoding encoding, float value) {
  return round_trip(encoding, std::vector<float>{value})[0];
}

// Round to nearest even with `bits` significant bits and no exponent below
// `min_exponent` (subnormals), in double: exact for any float32.
double reference_round(float x, int bits, int min_exponent) {
  if (x == 0) return x;
  int exponent;
  std::frexp(static_cast<double>(x), &exponent);
  const double ulp = std::ldexp(1.0, std::max(exponent - 1, min_exponent) - (bits - 1));
  return std::nearbyint(static_cast<double>(x) / ulp) * ulp;
}
double reference_bfloat16(float x) { return reference_round(x, 8, -126); }
double reference_float16(float x) { return reference_round(x, 11, -14); }

// Random values whose magnitudes spread evenly over [2^low, 2^high), both signs.
std::vector<float> spread_values(size_t n, double low, double high, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> exponent(low, high);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> values(n);
  for (auto& v : values)
    v = static_cast<float>((negative(rng) ? -1 : 1) * std::exp2(exponent(rng)));
  return values;
}

float block_absmax(const std::vector<float>& values, size_t index) {
  const size_t start = index / kInt8BlockElements * kInt8BlockElements;
  const size_t end = std::min(values.size(), start + kInt8BlockElements);
  float largest = 0;
  for (size_t i = start; i < end; ++i) largest = std::max(largest, std::abs(values[i]));
  return largest;
}

// The first value whose round trip strays beyond the documented bound.
void check_within_bound(WireEncoding encoding, const std::vector<float>& values) {
  const auto back = round_trip(encoding, values);
  for (size_t i = 0; i < values.size(); ++i) {
    const double error = std::abs(static_cast<double>(back[i]) - values[i]);
    const double bound = max_abs_error(encoding, values[i], block_absmax(values, i));
    if (!(error <= bound)) {
      FAIL_CHECK(wire_dtype_name(encoding) << ": value " << i << " of " << values.size() << ", "
                                           << values[i] << ", came back " << back[i]
                                           << ": error " << error << " above the bound " << bound);
      return;
    }
  }
}

// The first value that came `back` other than `reference` rounds it (NaN aside).
void check_rounds_as(const char* what, const std::vector<float>& values,
                     const std::vector<float>& back, double (*reference)(float)) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isnan(values[i]) && back[i] != reference(values[i])) {
      FAIL_CHECK(what << " of " << values[i] << " is " << back[i] << ", expected "
                      << reference(values[i]));
      return;
    }
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

}  // namespace

TEST_CASE("names each wire_dtype and refuses any other") {
  for (auto encoding : kEncodings)
    CHECK(wire_encoding_for_dtype(wire_dtype_name(encoding)) == encoding);
  CHECK(wire_encoding_for_dtype("float32") == WireEncoding::Raw);
  CHECK(wire_encoding_for_dtype("bfloat16") == WireEncoding::BFloat16);
  CHECK(wire_encoding_for_dtype("float16") == WireEncoding::Float16);
  CHECK(wire_encoding_for_dtype("int8") == WireEncoding::Int8Blockwise);
  CHECK_THROWS_WITH_AS(wire_encoding_for_dtype("fp16"),
                       "wire_dtype \"fp16\" is none of \"float32\", \"bfloat16\", \"float16\", "
                       "\"int8\"",
                       std::invalid_argument);
}

TEST_CASE("every wire_dtype a job accepts names an encoding, float32 uncompressed by default") {
  const std::string job = "[trainer]\nplugin = \"t\"\n[data]\ndir = \"d\"\n";
  const auto dtype_of = [&](const std::vector<std::string>& overrides) {
    return flare::jobspec::load_job_text(job, "job.toml", overrides).wire_dtype;
  };
  CHECK(wire_encoding_for_dtype(dtype_of({})) == WireEncoding::Raw);
  for (auto encoding : kEncodings) {
    const std::string name(wire_dtype_name(encoding));
    CHECK(wire_encoding_for_dtype(dtype_of({"server.wire_dtype=" + name})) == encoding);
  }
}

TEST_CASE("counts wire bytes exactly and writes no byte beyond them") {
  CHECK(encoded_bytes(WireEncoding::Raw, 3) == 12);
  CHECK(encoded_bytes(WireEncoding::BFloat16, 3) == 6);
  CHECK(encoded_bytes(WireEncoding::Float16, 3) == 6);
  // A float32 scale before each block of up to 256 int8 values.
  CHECK(encoded_bytes(WireEncoding::Int8Blockwise, 0) == 0);
  CHECK(encoded_bytes(WireEncoding::Int8Blockwise, 1) == 5);
  CHECK(encoded_bytes(WireEncoding::Int8Blockwise, 256) == 260);
  CHECK(encoded_bytes(WireEncoding::Int8Blockwise, 257) == 265);
  CHECK(encoded_bytes(WireEncoding::Int8Blockwise, 1000) == 1016);
  for (auto encoding : kEncodings) {
    for (size_t n : {1, 9, 255, 256, 257, 1000}) {
      INFO(wire_dtype_name(encoding) << ", " << n << " values");
      const auto values = spread_values(n, -3, 3, 7);
      std::vector<std::byte> wire(encoded_bytes(encoding, n) + 16, std::byte{0xA5});
      encode(encoding, values.data(), n, wire.data());
      CHECK(std::all_of(wire.end() - 16, wire.end(), [](std::byte b) { return b == std::byte{0xA5}; }));
    }
  }
}

TEST_CASE("a chunk holds as many whole blocks as fit its bytes, and at least one") {
  for (auto encoding : kEncodings) {
    for (size_t max_bytes : {1024u, 1040u, 4u << 20, (4u << 20) + 259}) {
      INFO(wire_dtype_name(encoding) << ", " << max_bytes << " bytes");
      const size_t n = chunk_elements(encoding, max_bytes);
      CHECK(n % kInt8BlockElements == 0);
      CHECK(encoded_bytes(encoding, n) <= max_bytes);
      CHECK(encoded_bytes(encoding, n + kInt8BlockElements) > max_bytes);
    }
  }
  CHECK(chunk_elements(WireEncoding::Int8Blockwise, 260) == 256);
  CHECK_THROWS_WITH_AS(chunk_elements(WireEncoding::Int8Blockwise, 259),
                       "a int8 chunk of 259 bytes holds no block of 256 values (260 bytes)",
                       std::invalid_argument);
}

TEST_CASE("random values of odd sizes come back within each encoding's documented error") {
  for (size_t n : {1, 7, 255, 256, 257, 1000, 4099}) {
    INFO(n << " values");
    CHECK(round_trip(WireEncoding::Raw, spread_values(n, -140, 120, 1)) ==
          spread_values(n, -140, 120, 1));
    check_within_bound(WireEncoding::BFloat16, spread_values(n, -149, 127.9, 2));
    check_within_bound(WireEncoding::Float16, spread_values(n, -30, 15.9, 3));
    check_within_bound(WireEncoding::Int8Blockwise, spread_values(n, -20, 20, 4));
    check_within_bound(WireEncoding::Int8Blockwise, spread_values(n, -149, 127.9, 5));
  }
}

TEST_CASE("bfloat16 and float16 round to the nearest even value, as a float64 reference does") {
  for (const auto& values :
       {spread_values(100000, -149, 127.9, 11), spread_values(100000, -8, 8, 12)})
    check_rounds_as("bfloat16", values, round_trip(WireEncoding::BFloat16, values),
                    reference_bfloat16);
  const auto values = spread_values(100000, -30, 15.9, 13);
  check_rounds_as("float16", values, round_trip(WireEncoding::Float16, values), reference_float16);
  // Ties: half a unit in the last place goes to the even neighbour.
  CHECK(round_trip(WireEncoding::BFloat16, 1 + 0x1p-8f) == 1);
  CHECK(round_trip(WireEncoding::BFloat16, 1 + 3 * 0x1p-8f) == 1 + 0x1p-6f);
  CHECK(round_trip(WireEncoding::Float16, 1 + 0x1p-11f) == 1);
  CHECK(round_trip(WireEncoding::Float16, -(1 + 3 * 0x1p-11f)) == -(1 + 0x1p-9f));
}

TEST_CASE("subnormals: float16 keeps its own, bfloat16 keeps float32's") {
  CHECK(round_trip(WireEncoding::Float16, 0x1p-24f) == 0x1p-24f);            // smallest float16
  CHECK(round_trip(WireEncoding::Float16, 0x1p-14f - 0x1p-24f) == 0x1p-14f - 0x1p-24f);
  CHECK(round_trip(WireEncoding::Float16, 0x1p-25f) == 0);                    // a tie: to 0
  CHECK(round_trip(WireEncoding::Float16, 0x1.8p-25f) == 0x1p-24f);
  CHECK(round_trip(WireEncoding::Float16, -0x1.4p-20f) == -0x1.4p-20f);
  CHECK(std::signbit(round_trip(WireEncoding::Float16, -0x1p-30f)));          // -0 stays -0
  CHECK(round_trip(WireEncoding::BFloat16, 0x1p-133f) == 0x1p-133f);          // smallest bfloat16
  CHECK(round_trip(WireEncoding::BFloat16, 0x1p-127f) == 0x1p-127f);
  CHECK(round_trip(WireEncoding::BFloat16, 0x1p-149f) == 0);
  CHECK(round_trip(WireEncoding::BFloat16, 0x1.8p-133f) == 0x1p-132f);
}

TEST_CASE("values at the edges of float16 and bfloat16: the largest kept, beyond it refused") {
  CHECK(round_trip(WireEncoding::Float16, 65504.0f) == 65504.0f);
  CHECK(round_trip(WireEncoding::Float16, -65519.0f) == -65504.0f);
  for (float too_large : {65520.0f, -70000.0f, 1e30f, std::numeric_limits<float>::max()}) {
    INFO(too_large);
    std::vector<float> values(600, 1.0f);
    values[517] = too_large;
    std::vector<std::byte> wire(encoded_bytes(WireEncoding::Float16, values.size()));
    try {
      encode(WireEncoding::Float16, values.data(), values.size(), wire.data());
      FAIL_CHECK("float16 carried " << too_large);
    } catch (const WireRangeError& e) {
      CHECK(e.index() == 517);
      CHECK(e.value() == too_large);
      CHECK(std::string(e.what()).find("its largest magnitude is 65504") != std::string::npos);
    }
  }
  constexpr float kLargestBFloat16 = 0x1.fep127f;
  CHECK(round_trip(WireEncoding::BFloat16, kLargestBFloat16) == kLargestBFloat16);
  CHECK(round_trip(WireEncoding::BFloat16, 0x1.fefffep127f) == kLargestBFloat16);
  CHECK_THROWS_AS(round_trip(WireEncoding::BFloat16, 0x1.ffp127f), WireRangeError);
  CHECK_THROWS_AS(round_trip(WireEncoding::BFloat16, -std::numeric_limits<float>::max()),
                  WireRangeError);
  // Int8 scales per block: large values are no problem.
  check_within_bound(WireEncoding::Int8Blockwise, {std::numeric_limits<float>::max(), -1e38f, 1});
}

TEST_CASE("NaN and infinities stay non-finite, so that the receiver's check still sees them") {
  // 0x7F800001: a NaN whose payload lies only in the bits bfloat16 drops.
  const float low_payload_nan = std::bit_cast<float>(0x7F800001u);
  for (auto encoding : {WireEncoding::BFloat16, WireEncoding::Float16}) {
    INFO(wire_dtype_name(encoding));
    const auto back = round_trip(encoding, std::vector<float>{kNaN, low_payload_nan, kInf, -kInf});
    CHECK(std::isnan(back[0]));
    CHECK(std::isnan(back[1]));
    CHECK(back[2] == kInf);
    CHECK(back[3] == -kInf);
  }
  std::vector<float> values = spread_values(3 * kInt8BlockElements, -4, 4, 21);
  values[kInt8BlockElements + 5] = kInf;
  const auto back = round_trip(WireEncoding::Int8Blockwise, values);
  CHECK(std::all_of(back.begin() + kInt8BlockElements, back.begin() + 2 * kInt8BlockElements,
                    [](float v) { return std::isnan(v); }));
  CHECK(std::none_of(back.begin(), back.begin() + kInt8BlockElements,
                     [](float v) { return std::isnan(v); }));
  CHECK(std::none_of(back.begin() + 2 * kInt8BlockElements, back.end(),
                     [](float v) { return std::isnan(v); }));
  values[kInt8BlockElements + 5] = kNaN;
  CHECK(std::isnan(round_trip(WireEncoding::Int8Blockwise, values)[kInt8BlockElements]));
}

TEST_CASE("int8: a block of zeros stays zeros, a tiny block becomes zeros, ties go to even") {
  std::vector<float> values(2 * kInt8BlockElements + 3, 0.0f);
  for (size_t i = kInt8BlockElements; i < values.size(); ++i) values[i] = 1e-44f * (i % 3);
  const auto back = round_trip(WireEncoding::Int8Blockwise, values);
  CHECK(std::all_of(back.begin(), back.end(), [](float v) { return v == 0; }));
  // absmax 127: a scale of 1, so values are rounded to integers.
  const auto ties = round_trip(WireEncoding::Int8Blockwise,
                               std::vector<float>{127, 0.5f, 1.5f, 2.5f, -2.5f, 126.6f, -127});
  CHECK(ties == std::vector<float>{127, 0, 2, 2, -2, 127, -127});
  // The scale is absmax / 127 of each block on its own.
  std::vector<float> two_blocks(kInt8BlockElements + 1, 1.0f);
  two_blocks[0] = 254;
  two_blocks.back() = 0.3f;
  const auto scaled = round_trip(WireEncoding::Int8Blockwise, two_blocks);
  CHECK(scaled[1] == 0);  // 1 is half a step of 2: a tie, to the even 0
  CHECK(std::abs(scaled.back() - 0.3f) <= 0.3f * 0x1p-20f);
  // Subnormal blocks: 190 * 2^-149 / 127 rounds down to a scale of 2^-149,
  // so the largest value is 190 steps, more than int8 holds.
  check_within_bound(WireEncoding::Int8Blockwise, {190 * 0x1p-149f, -190 * 0x1p-149f, 0x1p-149f});
}

TEST_CASE("a tensor encoded in chunks gives the bytes and values of one piece") {
  const auto tensor = spread_values(5 * kInt8BlockElements + 77, -12, 12, 31);
  for (auto encoding : kEncodings) {
    const size_t chunk =
        chunk_elements(encoding, 2 * encoded_bytes(encoding, kInt8BlockElements) + 100);
    INFO(wire_dtype_name(encoding) << ", chunks of " << chunk);
    const auto whole = encoded(encoding, tensor);
    // One byte in, so that no chunk starts aligned.
    std::vector<std::byte> chunked(whole.size() + 1);
    std::vector<float> back(tensor.size());
    size_t offset = 1;
    for (size_t start = 0; start < tensor.size(); start += chunk) {
      const size_t n = std::min(chunk, tensor.size() - start);
      encode(encoding, tensor.data() + start, n, chunked.data() + offset);
      decode(encoding, chunked.data() + offset, n, back.data() + start);
      offset += encoded_bytes(encoding, n);
    }
    CHECK(offset == chunked.size());
    CHECK(std::equal(whole.begin(), whole.end(), chunked.begin() + 1));
    CHECK(back == round_trip(encoding, tensor));
  }
}

TEST_CASE("the checked calls refuse a byte count that does not match the values") {
  std::vector<float> values(300, 1.0f);
  std::vector<std::byte> wire(encoded_bytes(WireEncoding::Int8Blockwise, 300));
  encode(WireEncoding::Int8Blockwise, std::span<const float>(values), std::span(wire));
  std::vector<float> back(300);
  decode(WireEncoding::Int8Blockwise, std::span<const std::byte>(wire), std::span(back));
  CHECK(back == values);
  CHECK_THROWS_WITH_AS(
      decode(WireEncoding::Int8Blockwise, std::span<const std::byte>(wire).first(307),
             std::span(back)),
      "int8 wire bytes of 300 values are 308, given 307", std::invalid_argument);
  CHECK_THROWS_AS(encode(WireEncoding::Float16, std::span<const float>(values).first(299),
                         std::span(wire)),
                  std::invalid_argument);
}

TEST_CASE("both float16 loops stop at the first value past 65504 and name it") {
  std::vector<float> values(40, 2.0f);
  values[35] = -65520.0f;
  values[37] = 1e9f;
  std::vector<std::byte> wire(2 * values.size());
  CHECK(wire_kernels::encode_float16_portable(values.data(), values.size(), wire.data()) == 35);
  if (wire_kernels::have_f16c())
    CHECK(wire_kernels::encode_float16_f16c(values.data(), values.size(), wire.data()) == 35);
  values[35] = kInf;  // not a value float16 cannot carry: it stays infinite
  CHECK(wire_kernels::encode_float16_portable(values.data(), values.size(), wire.data()) == 37);
  if (wire_kernels::have_f16c())
    CHECK(wire_kernels::encode_float16_f16c(values.data(), values.size(), wire.data()) == 37);
}

TEST_CASE("the portable float16 loops round as the reference does and match F16C bit for bit") {
  // Float32 values across the whole bit range, every 4099th pattern.
  std::vector<float> sweep;
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 4099) {
    const float v = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(v) || std::abs(v) < 65520) sweep.push_back(v);
  }
  std::vector<std::byte> portable(2 * sweep.size());
  REQUIRE(wire_kernels::encode_float16_portable(sweep.data(), sweep.size(), portable.data()) ==
          sweep.size());
  std::vector<float> back(sweep.size());
  wire_kernels::decode_float16_portable(portable.data(), back.size(), back.data());
  check_rounds_as("portable float16", sweep, back, reference_float16);
  if (!wire_kernels::have_f16c()) {
    MESSAGE("no F16C on this CPU: only the portable loops checked");
    return;
  }
  std::vector<std::byte> hardware(portable.size());
  REQUIRE(wire_kernels::encode_float16_f16c(sweep.data(), sweep.size(), hardware.data()) ==
          sweep.size());
  for (size_t i = 0; i < sweep.size(); ++i)
    if (!std::isnan(sweep[i]) && (portable[2 * i] != hardware[2 * i] ||
                                  portable[2 * i + 1] != hardware[2 * i + 1])) {
      FAIL_CHECK("float16 of " << sweep[i] << ": the portable and F16C bits differ");
      break;
    }
  // Every float16 pattern decodes alike.
  std::vector<std::byte> all_halves(2 * 65536);
  for (uint32_t h = 0; h < 65536; ++h) {
    all_halves[2 * h] = std::byte(h & 0xFF);
    all_halves[2 * h + 1] = std::byte(h >> 8);
  }
  std::vector<float> from_portable(65536), from_hardware(65536);
  wire_kernels::decode_float16_portable(all_halves.data(), 65536, from_portable.data());
  wire_kernels::decode_float16_f16c(all_halves.data(), 65536, from_hardware.data());
  for (uint32_t h = 0; h < 65536; ++h)
    if (!same_float(from_portable[h], from_hardware[h])) {
      FAIL_CHECK("float16 pattern " << h << " decodes to " << from_portable[h] << " portably, "
                                    << from_hardware[h] << " with F16C");
      break;
    }
}
