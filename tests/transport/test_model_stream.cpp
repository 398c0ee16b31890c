// Models as streams of bounded parts: what goes in comes out, tensor by
// tensor and byte for byte, in parts no larger than kChunkBytes; whatever
// does not describe a model is refused naming the tensor, before anything is
// allocated for it; and a slow receiver holds the sender back.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <cstring>
#include <numeric>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "transport/flare.grpc.pb.h"
#include "transport/model_stream.hpp"
#include "transport/wire_codec.hpp"

using namespace flare;
namespace v1 = transport::v1;

namespace {

template <class T>
tensor::OwnedTensor owned(const std::string& name, DLDataType dtype, std::vector<int64_t> shape,
                          const std::vector<T>& values) {
  tensor::OwnedTensor t{name, dtype, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

struct Part {
  std::optional<v1::TensorHeader> header;
  std::string data;
};

std::vector<Part> parts_of(std::span<const flare_named_tensor> tensors) {
  std::vector<Part> parts;
  transport::write_tensors(tensors, false, v1::RAW,
                           [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
                             Part p;
                             if (h) p.header = *h;
                             else p.data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                             parts.push_back(std::move(p));
                             return true;
                           });
  return parts;
}

// Reads `parts` as a stream announcing `expected` tensors.
std::vector<tensor::OwnedTensor> read(const std::vector<Part>& parts, size_t expected) {
  transport::OwnedTensorsSink sink;
  transport::ModelStreamReader reader(sink, expected);
  for (const auto& p : parts) {
    if (p.header) reader.tensor(*p.header);
    else reader.data(p.data);
  }
  reader.finish();
  return std::move(sink.tensors());
}

// The refusal reading `parts` gives, and the position it names.
std::pair<std::string, size_t> refusal(const std::vector<Part>& parts, size_t expected) {
  try {
    (void)read(parts, expected);
  } catch (const transport::MalformedTensor& e) {
    return {e.what(), e.index()};
  }
  FAIL("expected a MalformedTensor");
  return {};
}

v1::TensorHeader header(const std::string& name, DLDataType dtype, std::vector<int64_t> shape) {
  v1::TensorHeader h;
  h.set_name(name);
  h.set_dtype_code(dtype.code);
  h.set_dtype_bits(dtype.bits);
  h.set_dtype_lanes(dtype.lanes);
  for (int64_t d : shape) h.add_shape(d);
  return h;
}

}  // namespace

TEST_CASE("a model of many tensors of odd sizes survives the stream, in parts of at most 4 MiB") {
  std::vector<float> big(transport::kChunkBytes / sizeof(float) * 2 + 3);  // three parts
  std::iota(big.begin(), big.end(), 0.5f);
  std::vector<double> wide(transport::kChunkBytes / sizeof(double) + 1);  // two parts
  std::iota(wide.begin(), wide.end(), -7.0);
  std::vector<tensor::OwnedTensor> model{
      owned<float>("fc.weight", {kDLFloat, 32, 1}, {2, 3}, {1, 2, 3, 4, 5, 6}),
      owned<int64_t>("bn.num_batches_tracked", {kDLInt, 64, 1}, {}, {7}),  // a scalar
      owned<uint16_t>("half", {kDLBfloat, 16, 1}, {3}, {0x3f80, 0xbf80, 1}),
      owned<float>("empty", {kDLFloat, 32, 1}, {0, 4}, {}),
      owned<float>("big", {kDLFloat, 32, 1}, {static_cast<int64_t>(big.size())}, big),
      owned<uint8_t>("odd", {kDLUInt, 8, 1}, {7}, {1, 2, 3, 4, 5, 6, 7}),
      owned<double>("wide", {kDLFloat, 64, 1}, {static_cast<int64_t>(wide.size())}, wide)};
  const auto parts = parts_of(tensor::views_of(model));
  size_t headers = 0, data_parts = 0;
  for (const auto& p : parts) {
    if (p.header) ++headers;
    else {
      ++data_parts;
      CHECK(p.data.size() <= transport::kChunkBytes);
    }
  }
  CHECK(headers == model.size());
  CHECK(data_parts == 1 + 1 + 1 + 0 + 3 + 1 + 2);
  const auto back = read(parts, model.size());
  REQUIRE(back.size() == model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    INFO(model[i].name);
    CHECK(back[i].name == model[i].name);
    CHECK(back[i].dtype.code == model[i].dtype.code);
    CHECK(back[i].dtype.bits == model[i].dtype.bits);
    CHECK(back[i].dtype.lanes == model[i].dtype.lanes);
    CHECK(back[i].shape == model[i].shape);
    CHECK(back[i].data == model[i].data);
  }
}

TEST_CASE("a stream resumed after any part a receiver holds arrives whole, once") {
  std::vector<float> big(transport::kChunkBytes / sizeof(float) * 2 + 3);  // three parts
  std::iota(big.begin(), big.end(), 0.5f);
  std::vector<tensor::OwnedTensor> weights{
      owned<float>("big", {kDLFloat, 32, 1}, {static_cast<int64_t>(big.size())}, big),
      owned<float>("empty", {kDLFloat, 32, 1}, {0}, {})};
  std::vector<tensor::OwnedTensor> aux{owned<int64_t>("count", {kDLInt, 64, 1}, {1}, {9})};
  const auto weight_views = tensor::views_of(weights);
  const auto aux_views = tensor::views_of(aux);
  const uint64_t total =
      transport::count_parts(weight_views, v1::RAW) + transport::count_parts(aux_views, v1::RAW);
  CHECK(total == 4 + 1 + 2);
  // int8 parts hold more elements than raw float32 ones: "big" is one part.
  CHECK(transport::count_parts(weight_views, v1::INT8_BLOCKWISE) == 2 + 1);

  for (uint64_t held = 0; held <= total; ++held) {
    INFO("resumed after ", held, " parts");
    transport::OwnedTensorsSink sink;
    transport::ModelStreamReader reader(sink, weights.size() + aux.size());
    uint64_t seen = 0, sent_after = 0;
    // The first stream is cut after `held` parts; the second skips them.
    auto cut_at_held = [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
      if (seen == held) return false;
      ++seen;
      if (h) reader.tensor(*h);
      else reader.data(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      return true;
    };
    auto rest = [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
      ++sent_after;
      if (h) reader.tensor(*h);
      else reader.data(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      return true;
    };
    if (transport::write_tensors(weight_views, false, v1::RAW, cut_at_held))
      (void)transport::write_tensors(aux_views, true, v1::RAW, cut_at_held);
    uint64_t skip = held;
    REQUIRE(transport::write_tensors(weight_views, false, v1::RAW, rest, &skip));
    REQUIRE(transport::write_tensors(aux_views, true, v1::RAW, rest, &skip));
    CHECK(skip == 0);
    CHECK(sent_after == total - held);
    reader.finish();
    REQUIRE(sink.tensors().size() == 3);
    CHECK(sink.tensors()[0].data == weights[0].data);
    CHECK(sink.tensors()[2].data == aux[0].data);
  }
}

TEST_CASE("a view with a byte offset is sent from its offset") {
  std::vector<float> buffer = {9, 9, 1, 2};
  int64_t shape = 2;
  flare_named_tensor view{};
  view.struct_size = sizeof(view);
  view.name = "tail";
  view.tensor = {buffer.data(), {kDLCPU, 0}, 1, {kDLFloat, 32, 1}, &shape, nullptr,
                 2 * sizeof(float)};
  const auto back = read(parts_of({&view, 1}), 1);
  REQUIRE(back.at(0).data.size() == 2 * sizeof(float));
  float values[2];
  std::memcpy(values, back[0].data.data(), sizeof(values));
  CHECK(values[0] == 1);
  CHECK(values[1] == 2);
}

TEST_CASE("parts of the wrong size, missing or extra, are refused naming the tensor") {
  std::vector<float> values(transport::kChunkBytes / sizeof(float) + 5);
  std::vector<tensor::OwnedTensor> model{
      owned<float>("a", {kDLFloat, 32, 1}, {3}, {1, 2, 3}),
      owned<float>("b", {kDLFloat, 32, 1}, {static_cast<int64_t>(values.size())}, values)};
  const auto good = parts_of(tensor::views_of(model));  // a, a's data, b, b's two parts
  REQUIRE(good.size() == 5);

  auto short_part = good;
  short_part[1].data.resize(8);
  CHECK(refusal(short_part, 2) ==
        std::pair<std::string, size_t>{"tensor 'a' has a data part of 8 bytes at element 0; 3 "
                                       "elements of float32 in encoding RAW take 12",
                                       0});
  auto cut = good;
  cut.pop_back();  // b's last part never comes
  CHECK(refusal(cut, 2).first == "tensor 'b' ended after 1048576 of its 1048581 elements");
  auto extra = good;
  extra.push_back(good.back());
  CHECK(refusal(extra, 2).first == "tensor 'b' has more data than its 1048581 elements");
  auto early = good;
  early.erase(early.begin() + 1);  // a's data missing: b's header comes too soon
  CHECK(refusal(early, 2) == std::pair<std::string, size_t>{"tensor 'a' ended after 0 of its 3 elements", 0});
  CHECK(refusal(good, 3).first == "the stream ended after 2 of the 3 tensors announced");
  CHECK(refusal(good, 1).first == "tensor 'b' is one more than the 1 announced");
  CHECK(refusal({good[1]}, 1).first == "data came before any tensor header");
}

TEST_CASE("a header that describes no tensor is refused before anything is allocated") {
  const auto refused = [](v1::TensorHeader h) { return refusal({Part{h, {}}}, 1).first; };
  CHECK(refused(header("w", {kDLFloat, 32, 1}, {-1})) ==
        "tensor 'w' has shape [-1], negative or too large");
  CHECK(refused(header("w", {kDLFloat, 32, 1}, {1LL << 40, 1LL << 40})) ==
        "tensor 'w' has shape [1099511627776, 1099511627776], negative or too large");
  CHECK(refused(header("w", {kDLFloat, 32, 1}, {1LL << 60})).find("more than this machine's memory") !=
        std::string::npos);
  CHECK(refused(header("w", {kDLFloat, 0, 1}, {1})) ==
        "tensor 'w' has no valid dtype (code 2, bits 0, lanes 1)");
  CHECK(refused(header("w", {kDLFloat, 32, 0}, {1})) ==
        "tensor 'w' has no valid dtype (code 2, bits 32, lanes 0)");
  auto wide_code = header("w", {kDLFloat, 32, 1}, {1});
  wide_code.set_dtype_code(256);  // would wrap to 0 in DLPack's uint8
  CHECK(refused(wide_code).find("has no valid dtype (code 256") != std::string::npos);
  auto unknown = header("w", {kDLFloat, 32, 1}, {1});
  unknown.set_encoding(static_cast<v1::WireEncoding>(77));
  CHECK(refused(unknown) == "tensor 'w' comes in encoding 77, which this build cannot read");
}

TEST_CASE("float32 tensors sent in a smaller wire dtype arrive within its documented error") {
  // Several parts, a size that is no multiple of an int8 block, values over
  // many magnitudes (and a block of zeros); other dtypes travel exact.
  std::vector<float> values(transport::kChunkBytes / 2 + 1000);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = i < 256 ? 0.0f : std::sin(0.001f * i) * std::pow(10.0f, float(i % 7) - 3);
  std::vector<tensor::OwnedTensor> model{
      owned<float>("w", {kDLFloat, 32, 1}, {static_cast<int64_t>(values.size())}, values),
      owned<int64_t>("steps", {kDLInt, 64, 1}, {2}, {5, 1LL << 40}),
      owned<double>("d", {kDLFloat, 64, 1}, {1}, {0.1})};
  for (const auto [wire, codec] : {std::pair{v1::BFLOAT16, transport::WireEncoding::BFloat16},
                                   std::pair{v1::FLOAT16, transport::WireEncoding::Float16},
                                   std::pair{v1::INT8_BLOCKWISE,
                                             transport::WireEncoding::Int8Blockwise}}) {
    INFO(v1::WireEncoding_Name(wire));
    std::vector<Part> parts;
    size_t wire_bytes = 0;
    transport::write_tensors(tensor::views_of(model), false, wire,
                             [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
                               Part p;
                               if (h) p.header = *h;
                               else p.data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
                               CHECK(p.data.size() <= transport::kChunkBytes);
                               wire_bytes += p.data.size();
                               parts.push_back(std::move(p));
                               return true;
                             });
    CHECK(parts[0].header->encoding() == wire);
    CHECK(wire_bytes < values.size() * sizeof(float) * 6 / 10);  // 2 bytes or ~1 a value
    const auto back = read(parts, model.size());
    REQUIRE(back.size() == 3);
    CHECK(back[1].data == model[1].data);  // not float32: as it was
    CHECK(back[2].data == model[2].data);
    std::vector<float> got(values.size());
    std::memcpy(got.data(), back[0].data.data(), back[0].data.size());
    size_t outside = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const size_t block = i / transport::kInt8BlockElements * transport::kInt8BlockElements;
      float absmax = 0;
      for (size_t j = block; j < std::min(values.size(), block + transport::kInt8BlockElements); ++j)
        absmax = std::max(absmax, std::fabs(values[j]));
      outside += std::fabs(double(got[i]) - values[i]) > transport::max_abs_error(codec, values[i], absmax);
    }
    CHECK(outside == 0);
  }
}

TEST_CASE("a value the wire dtype cannot carry stops the sender, naming the tensor and element") {
  std::vector<tensor::OwnedTensor> model{
      owned<float>("layer.w", {kDLFloat, 32, 1}, {3}, {1.0f, 70000.0f, 2.0f})};
  CHECK_THROWS_WITH_AS(
      transport::write_tensors(tensor::views_of(model), false, v1::FLOAT16,
                               [](const v1::TensorHeader*, std::span<const std::byte>) { return true; }),
      doctest::Contains("tensor 'layer.w' element 1 cannot travel as FLOAT16 (server.wire_dtype)"),
      std::range_error);
}

namespace {

// Reads an upload a part at a time, slowly, noting how far the sender ran ahead.
class SlowReceiver final : public v1::FlareServer::Service {
 public:
  explicit SlowReceiver(const std::atomic<int64_t>& sent) : sent_(sent) {}
  grpc::Status SubmitUpdate(grpc::ServerContext*, grpc::ServerReader<v1::UploadPart>* reader,
                            v1::Ack* ack) override {
    v1::UploadPart part;
    while (reader->Read(&part)) {
      if (!part.has_data()) continue;
      ++received;
      most_ahead = std::max(most_ahead, sent_.load() - received);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ack->set_accepted(true);
    return grpc::Status::OK;
  }
  int64_t received = 0;
  int64_t most_ahead = 0;  // data parts handed to gRPC but not yet read

 private:
  const std::atomic<int64_t>& sent_;
};

}  // namespace

TEST_CASE("a receiver that reads slowly holds the sender back: a few parts in flight, not the model") {
  constexpr int64_t kParts = 40;  // 160 MiB
  std::vector<float> values(transport::kChunkBytes / sizeof(float) * kParts, 1.0f);
  std::vector<tensor::OwnedTensor> model{owned<float>(
      "big", {kDLFloat, 32, 1}, {static_cast<int64_t>(values.size())}, values)};
  std::atomic<int64_t> sent{0};
  SlowReceiver receiver(sent);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(transport::kMaxMessageBytes);
  builder.RegisterService(&receiver);
  const auto server = builder.BuildAndStart();
  REQUIRE(port > 0);
  const auto stub = v1::FlareServer::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  grpc::ClientContext context;
  v1::Ack ack;
  auto writer = stub->SubmitUpdate(&context, &ack);
  v1::UploadPart part;
  part.mutable_update()->set_site("s1");
  REQUIRE(writer->Write(part));
  // The same writing code as a site's upload (ServerConnection::upload).
  const bool all_sent = transport::write_tensors(
      tensor::views_of(model), false, v1::RAW,
      [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
        transport::set_part(part, h, bytes);
        if (!h) ++sent;  // data handed to gRPC: in flight until the receiver reads it
        return writer->Write(part);
      });
  REQUIRE(all_sent);
  writer->WritesDone();
  REQUIRE(writer->Finish().ok());
  CHECK(receiver.received == kParts);
  // gRPC's flow control (HTTP/2 windows, grown by its bandwidth estimate)
  // lets a few parts run ahead: 1-4 seen here; a sender that buffered the
  // model would be tens of parts ahead of this reader, which takes 0.4 s.
  MESSAGE("most parts ahead of the reader: " << receiver.most_ahead);
  CHECK(receiver.most_ahead <= 12);
  server->Shutdown();
}
