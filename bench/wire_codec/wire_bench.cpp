// Each wire encoding's encode and decode on one core, chunk by chunk as the
// streaming sends a tensor, against memcpy of the same float32 bytes in the
// same run (interleaved; median of the repeats). Also the wire size and the
// largest error relative to the largest |value|, on normally distributed values.
//   flare-bench-wire-codec [--params 16777216] [--chunk-mib 4] [--repeats 5]
// MiB/s count float32 MiB (4 bytes a value) whatever the wire holds.
#include "transport/wire_codec.hpp"
#include "transport/wire_kernels.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace flare::transport;

namespace {

struct Options {
  size_t params = size_t{1} << 24;
  size_t chunk_mib = 4;
  size_t repeats = 5;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--params") o.params = std::stoul(value);
    else if (key == "--chunk-mib") o.chunk_mib = std::stoul(value);
    else if (key == "--repeats") o.repeats = std::stoul(value);
    else throw std::invalid_argument("unknown option " + key);
  }
  return o;
}

double seconds_of(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Encodes or decodes `values` chunk by chunk, as the streaming does.
using ChunkCall = std::function<void(const float* values, size_t n, std::byte* wire)>;

void over_chunks(size_t total, size_t chunk, const ChunkCall& call, const float* values,
                 std::byte* wire, WireEncoding encoding) {
  size_t offset = 0;
  for (size_t start = 0; start < total; start += chunk) {
    const size_t n = std::min(chunk, total - start);
    call(values + start, n, wire + offset);
    offset += encoded_bytes(encoding, n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<float> values(o.params), back(o.params), copy(o.params);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 0.02f);  // a typical weight spread
  for (auto& v : values) v = normal(rng);
  const double mib = 4.0 * o.params / (1 << 20);
  std::printf("%zu float32 values (%.0f MiB), chunks of %zu MiB of wire, %zu repeats, one core\n",
              o.params, mib, o.chunk_mib, o.repeats);
  std::printf("%-22s %12s %12s %12s %8s %14s\n", "encoding", "encode MiB/s", "decode MiB/s",
              "memcpy MiB/s", "wire", "max err/absmax");

  struct Variant {
    std::string name;
    WireEncoding encoding;
    ChunkCall encode_chunk;
    ChunkCall decode_chunk;  // gets (out, n, wire) with out cast away from const
  };
  const auto standard = [](WireEncoding e) {
    return Variant{std::string(wire_dtype_name(e)), e,
                   [e](const float* v, size_t n, std::byte* w) { encode(e, v, n, w); },
                   [e](const float* v, size_t n, std::byte* w) {
                     decode(e, w, n, const_cast<float*>(v));
                   }};
  };
  std::vector<Variant> variants{standard(WireEncoding::Raw), standard(WireEncoding::BFloat16),
                                standard(WireEncoding::Float16),
                                standard(WireEncoding::Int8Blockwise)};
  variants.push_back({"float16 (portable)", WireEncoding::Float16,
                      [](const float* v, size_t n, std::byte* w) {
                        wire_kernels::encode_float16_portable(v, n, w);
                      },
                      [](const float* v, size_t n, std::byte* w) {
                        wire_kernels::decode_float16_portable(w, n, const_cast<float*>(v));
                      }});

  for (const Variant& variant : variants) {
    const size_t chunk = chunk_elements(variant.encoding, o.chunk_mib << 20);
    std::vector<std::byte> wire(encoded_bytes(variant.encoding, o.params));
    std::vector<double> encode_s, decode_s, copy_s;
    for (size_t r = 0; r < o.repeats; ++r) {
      encode_s.push_back(seconds_of([&] {
        over_chunks(o.params, chunk, variant.encode_chunk, values.data(), wire.data(),
                    variant.encoding);
      }));
      decode_s.push_back(seconds_of([&] {
        over_chunks(o.params, chunk, variant.decode_chunk, back.data(), wire.data(),
                    variant.encoding);
      }));
      copy_s.push_back(seconds_of(
          [&] { std::memcpy(copy.data(), values.data(), o.params * sizeof(float)); }));
    }
    const float absmax = std::abs(*std::max_element(
        values.begin(), values.end(), [](float a, float b) { return std::abs(a) < std::abs(b); }));
    double max_error = 0;
    for (size_t i = 0; i < o.params; ++i)
      max_error = std::max(max_error, std::abs(static_cast<double>(back[i]) - values[i]));
    std::printf("%-22s %12.0f %12.0f %12.0f %7.1f%% %14.2e\n", variant.name.c_str(),
                mib / median(encode_s), mib / median(decode_s), mib / median(copy_s),
                100.0 * wire.size() / (4.0 * o.params), max_error / absmax);
  }
}
