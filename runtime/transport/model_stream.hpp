// Models as streams of bounded parts (flare.proto: TensorHeader, then data
// parts), both ways. The writer cuts each tensor into parts of at most
// kChunkBytes, re-encoding float32 values when the job asks for a smaller
// wire dtype; the reader checks every header and part before anything is
// allocated or passed on, and hands the values on piece by piece, so neither
// side ever holds a whole model in messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <flare/plugin_abi.h>

#include "tensor/owned_tensor.hpp"
#include "transport/flare.pb.h"

namespace flare::transport {

// A data part's most wire bytes. Small enough that a stream in flight costs a
// few MiB per site, large enough that per-part overhead stays under 1%.
constexpr size_t kChunkBytes = size_t{4} << 20;
// The largest message either side accepts: a data part and its framing (a
// request or a header is far smaller). Both sides set it: gRPC's default
// receive limit, 4 MiB, is just below a full part.
constexpr int kMaxMessageBytes = static_cast<int>(kChunkBytes + (64 << 10));

// A tensor header a stream announced, checked.
struct TensorDesc {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  uint64_t num_elements = 0;
  size_t element_bytes = 0;
  v1::WireEncoding encoding = v1::RAW;
  bool aux = false;

  // A view of the whole tensor without data (tensor.data NULL); shape points
  // into this object.
  flare_named_tensor view() const;
};

// A stream that describes no model: a bad header (negative or overflowing
// shape, a dtype of no bits, an encoding its dtype cannot have), a part of
// the wrong size, too few or too many tensors or bytes.
class MalformedTensor : public std::runtime_error {
 public:
  MalformedTensor(size_t index, const std::string& problem)
      : std::runtime_error(problem), index_(index) {}
  size_t index() const { return index_; }  // the tensor's position in the stream

 private:
  size_t index_;
};

// Where a reader puts what arrives. Calls come in stream order: a tensor's
// begin, then its pieces in element order, contiguous.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual void begin_tensor(size_t index, const TensorDesc& tensor) = 0;
  // `n` elements from `element_offset` of tensor `index`, in its own dtype
  // (decoded), dense; borrowed for the call.
  virtual void piece(size_t index, uint64_t element_offset, uint64_t n, const std::byte* data) = 0;
};

class ModelStreamReader {
 public:
  // `expected_tensors`: what the stream's header announced.
  ModelStreamReader(TensorSink& sink, size_t expected_tensors);

  void tensor(const v1::TensorHeader& header);
  void data(const std::string& bytes);
  // The stream ended: every announced tensor and byte must have come.
  void finish();

 private:
  [[noreturn]] void malformed(const std::string& problem) const;
  uint64_t next_part_elements() const;

  TensorSink& sink_;
  size_t expected_;
  size_t index_ = 0;  // tensors begun
  TensorDesc current_;
  uint64_t received_ = 0;  // elements of current_
  std::vector<std::byte> decoded_;  // one part's values, for re-encoded tensors
};

// Sends `tensors` (CPU, dense) as parts: for each a header (with `aux`), then
// its data. `emit` sends one part, either a header or `bytes` of data
// (borrowed for the call: the caller copies them into its message, the one
// copy on the way), and returns false when the receiver is gone; then writing
// stops and this returns false. float32 tensors travel as `encoding`, the
// others as they are; a value the encoding cannot carry (float16 beyond
// 65504) throws std::range_error naming the tensor and element.
// `skip_parts` (may be null): that many parts are not emitted (nor encoded),
// and it is counted down: a resumed transfer starts after the parts the
// receiver already holds, across several calls (weights, then aux).
using PartEmitter =
    std::function<bool(const v1::TensorHeader* header, std::span<const std::byte> bytes)>;
bool write_tensors(std::span<const flare_named_tensor> tensors, bool aux,
                   v1::WireEncoding encoding, const PartEmitter& emit,
                   uint64_t* skip_parts = nullptr);
// The parts write_tensors emits for `tensors`: per tensor its header and its
// data parts.
uint64_t count_parts(std::span<const flare_named_tensor> tensors, v1::WireEncoding encoding);

// Puts what a PartEmitter was handed into a stream message of either kind
// (TaskPart, UploadPart): the header, or the data bytes (the one copy).
template <class Part>
void set_part(Part& part, const v1::TensorHeader* header, std::span<const std::byte> bytes) {
  if (header) {
    *part.mutable_tensor() = *header;
  } else {
    part.mutable_data()->assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
}

// The job spec's server.wire_dtype ("float32", "bfloat16", "float16", "int8")
// as the protocol's encoding; throws std::invalid_argument naming the valid ones.
v1::WireEncoding wire_encoding_for(std::string_view wire_dtype);

// Collects a stream into owned tensors (a site receiving the global model,
// the server receiving the initial model).
class OwnedTensorsSink final : public TensorSink {
 public:
  void begin_tensor(size_t index, const TensorDesc& tensor) override;
  void piece(size_t index, uint64_t element_offset, uint64_t n, const std::byte* data) override;
  std::vector<tensor::OwnedTensor>& tensors() { return tensors_; }

 private:
  std::vector<tensor::OwnedTensor> tensors_;
  std::vector<size_t> element_bytes_;
};

}  // namespace flare::transport
