#include "storage/safetensors.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "temp_folder.hpp"

using flare::storage::load_safetensors;
using flare::storage::save_safetensors;
using flare::storage::StorageError;
using flare::tensor::OwnedTensor;
using flare::testing::read_bytes;
using flare::testing::TempFolder;
using flare::testing::write_bytes;

namespace {

template <typename T>
OwnedTensor make_tensor(std::string name, DLDataType dtype, std::vector<std::int64_t> shape,
                         std::vector<T> values) {
  OwnedTensor t{std::move(name), dtype, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(T));
  // memcpy from an empty vector's null data() is UB even for 0 bytes (UBSan).
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

// One tensor of every dtype the format knows, plus a scalar and an empty tensor.
std::vector<OwnedTensor> sample_tensors() {
  std::vector<OwnedTensor> t;
  t.push_back(make_tensor<float>("conv1.weight", {kDLFloat, 32, 1}, {2, 3},
                                 {0.5f, -1.25f, 2.0f, 3.5f, -0.0f, 1e-3f}));
  t.push_back(make_tensor<double>("f64", {kDLFloat, 64, 1}, {4}, {1.5, -2.25, 1e10, 0.0}));
  t.push_back(make_tensor<std::uint16_t>("f16", {kDLFloat, 16, 1}, {2, 2},
                                         {0x3C00, 0xC000, 0x3800, 0x0000}));  // 1, -2, 0.5, 0
  t.push_back(make_tensor<std::uint16_t>("bf16", {kDLBfloat, 16, 1}, {3},
                                         {0x3F80, 0x4040, 0xBF00}));  // 1, 3, -0.5
  t.push_back(make_tensor<std::int64_t>("i64", {kDLInt, 64, 1}, {2, 1, 2}, {-1, 2, 1LL << 40, 7}));
  t.push_back(make_tensor<std::int32_t>("i32", {kDLInt, 32, 1}, {3}, {-5, 0, 123456}));
  t.push_back(make_tensor<std::int16_t>("i16", {kDLInt, 16, 1}, {2}, {-300, 300}));
  t.push_back(make_tensor<std::int8_t>("i8", {kDLInt, 8, 1}, {3}, {-128, 0, 127}));
  t.push_back(make_tensor<std::uint8_t>("u8", {kDLUInt, 8, 1}, {4}, {0, 1, 128, 255}));
  t.push_back(make_tensor<std::uint8_t>("mask", {flare::storage::kFlareDLBool, 8, 1}, {5},
                                        {1, 0, 0, 1, 1}));
  t.push_back(make_tensor<float>("num_batches", {kDLFloat, 32, 1}, {}, {42.0f}));
  t.push_back(make_tensor<float>("empty", {kDLFloat, 32, 1}, {0, 3}, {}));
  return t;
}

std::vector<flare_named_tensor> views(const std::vector<OwnedTensor>& tensors) {
  std::vector<flare_named_tensor> v;
  for (const auto& t : tensors) v.push_back(t.view());
  return v;
}

// A file with the given header text (padded as the format requires) and buffer.
std::string raw_file(const std::string& header, const std::string& buffer) {
  std::string text = header;
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint64_t n = text.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  return bytes + text + buffer;
}

std::string load_error(const std::filesystem::path& file) {
  try {
    load_safetensors(file);
  } catch (const StorageError& e) {
    return e.what();
  }
  return "(no error)";
}

bool same_dtype(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

}  // namespace

TEST_CASE("a saved file loads back with the same tensors, order and metadata") {
  TempFolder dir;
  auto tensors = sample_tensors();
  std::map<std::string, std::string> metadata{{"format", "pt"}, {"round", "3"}};
  save_safetensors(dir / "model.safetensors", views(tensors), metadata);

  auto loaded = load_safetensors(dir / "model.safetensors");
  CHECK(loaded.metadata == metadata);
  REQUIRE(loaded.tensors.size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    INFO("tensor ", tensors[i].name);
    CHECK(loaded.tensors[i].name == tensors[i].name);
    CHECK(same_dtype(loaded.tensors[i].dtype, tensors[i].dtype));
    CHECK(loaded.tensors[i].shape == tensors[i].shape);
    CHECK(loaded.tensors[i].data == tensors[i].data);
  }
}

TEST_CASE("views of loaded tensors save to a byte-identical file") {
  TempFolder dir;
  auto tensors = sample_tensors();
  save_safetensors(dir / "a.safetensors", views(tensors), {{"k", "v"}});
  auto loaded = load_safetensors(dir / "a.safetensors");
  save_safetensors(dir / "b.safetensors", views(loaded.tensors), loaded.metadata);
  CHECK(read_bytes(dir / "a.safetensors") == read_bytes(dir / "b.safetensors"));
}

TEST_CASE("the header is 8-byte aligned JSON padded with spaces, tensors follow without gaps") {
  TempFolder dir;
  auto w = make_tensor<float>("w", {kDLFloat, 32, 1}, {2}, {1.0f, 2.0f});
  std::vector<flare_named_tensor> one{w.view()};
  save_safetensors(dir / "w.safetensors", one);

  std::string json = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string expected = raw_file(json, std::string(reinterpret_cast<const char*>(w.data.data()), 8));
  CHECK(read_bytes(dir / "w.safetensors") == expected);

  auto tensors = sample_tensors();
  save_safetensors(dir / "all.safetensors", views(tensors), {{"format", "pt"}});
  std::string bytes = read_bytes(dir / "all.safetensors");
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  std::string header = bytes.substr(8, n);
  CHECK(header.front() == '{');
  CHECK(header.find_last_not_of(' ') == header.rfind('}'));
  auto parsed = nlohmann::ordered_json::parse(header);
  CHECK(parsed.begin().key() == "__metadata__");
  std::uint64_t offset = 0;
  std::size_t i = 0;
  for (const auto& [name, entry] : parsed.items()) {
    if (name == "__metadata__") continue;
    CHECK(name == tensors[i].name);
    CHECK(entry["data_offsets"][0] == offset);
    offset += tensors[i].data.size();
    CHECK(entry["data_offsets"][1] == offset);
    ++i;
  }
  CHECK(bytes.size() == 8 + n + offset);
  CHECK(parsed["num_batches"]["shape"] == nlohmann::ordered_json::array());
  CHECK(parsed["mask"]["dtype"] == "BOOL");
  CHECK(parsed["bf16"]["dtype"] == "BF16");
}

TEST_CASE("a file without metadata has no __metadata__ entry and loads empty metadata") {
  TempFolder dir;
  auto w = make_tensor<std::int32_t>("w", {kDLInt, 32, 1}, {1}, {7});
  std::vector<flare_named_tensor> one{w.view()};
  save_safetensors(dir / "w.safetensors", one);
  CHECK(read_bytes(dir / "w.safetensors").find("__metadata__") == std::string::npos);
  CHECK(load_safetensors(dir / "w.safetensors").metadata.empty());
}

TEST_CASE("damaged files are rejected with the file and the problem named") {
  TempFolder dir;
  auto path = dir / "bad.safetensors";
  const std::string f32x2 = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  std::string good = raw_file(f32x2, std::string(8, 'x'));
  std::string huge_length = good;
  huge_length[5] = '\x01';
  const Case cases[] = {
      {"shorter than 8 bytes", "abc", "too short"},
      {"truncated in the buffer", good.substr(0, good.size() - 1), "truncated"},
      {"truncated in the header", good.substr(0, 20), "does not fit"},
      {"header length beyond the file", huge_length, "does not fit"},
      {"trailing bytes", good + "z", "trailing bytes"},
      {"header not JSON", raw_file("{nope", ""), "not valid JSON"},
      {"header not an object", raw_file("[1,2]", ""), "not a JSON object"},
      {"unknown dtype", raw_file(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})",
                                 std::string(16, 'x')),
       "unknown dtype \"F128\""},
      {"shape does not match byte count",
       raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')),
       "needs 12 bytes"},
      {"negative dimension",
       raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       "non-natural"},
      {"offsets reversed",
       raw_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}})", std::string(8, 'x')),
       "end before begin"},
      {"missing data_offsets", raw_file(R"({"w":{"dtype":"U8","shape":[0]}})", ""), "no \"data_offsets\""},
      {"overlapping tensors",
       raw_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                std::string(6, 'x')),
       "overlaps"},
      {"gap between tensors",
       raw_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
                std::string(6, 'x')),
       "(gap)"},
      {"metadata value not a string", raw_file(R"({"__metadata__":{"round":3}})", ""), "not a string"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    write_bytes(path, c.bytes);
    std::string message = load_error(path);
    CHECK_MESSAGE(message.find(path.string()) != std::string::npos, "message: ", message);
    CHECK_MESSAGE(message.find(c.message) != std::string::npos,
                  "expected '", c.message, "' in: ", message);
  }
  CHECK(load_error(dir / "missing.safetensors").find("missing.safetensors") != std::string::npos);
}

TEST_CASE("a header nesting arrays a million deep is an error, not a stack overflow") {
  // Found while writing the safetensors fuzzer (whose 4 KiB inputs cannot nest
  // this deep): the message quoted the value with dump(), which recurses once
  // per level; the parser itself does not.
  TempFolder dir;
  auto path = dir / "deep.safetensors";
  const std::string deep = std::string(1'000'000, '[') + "1" + std::string(1'000'000, ']');
  write_bytes(path, raw_file(R"({"w":{"dtype":"U8","shape":)" + deep + R"(,"data_offsets":[0,0]}})", ""));
  CHECK(load_error(path).find("\"shape\" [[...]] holds a non-natural number") != std::string::npos);
  write_bytes(path, raw_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[0,)" + deep + "]}}", ""));
  CHECK(load_error(path).find("\"data_offsets\" is not [begin, end]: [0,[...]]") != std::string::npos);
}

TEST_CASE("tensors the format cannot hold are refused and the old file is kept") {
  TempFolder dir;
  auto path = dir / "model.safetensors";
  auto w = make_tensor<float>("w", {kDLFloat, 32, 1}, {2, 2}, {1, 2, 3, 4});
  std::vector<flare_named_tensor> good{w.view()};
  save_safetensors(path, good);
  const std::string before = read_bytes(path);

  auto refused = [&](flare_named_tensor v, const char* expected) {
    std::vector<flare_named_tensor> list{v};
    CHECK_THROWS_WITH_AS(save_safetensors(path, list), doctest::Contains(expected), StorageError);
    CHECK(read_bytes(path) == before);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
  };
  auto v = w.view();
  std::int64_t transposed[] = {1, 2};
  v.tensor.strides = transposed;
  refused(v, "strided");
  v = w.view();
  v.tensor.device = DLDevice{kDLCUDA, 0};
  refused(v, "not on the CPU");
  v = w.view();
  v.tensor.dtype = DLDataType{kDLComplex, 64, 1};
  refused(v, "no safetensors equivalent");
  v = w.view();
  v.tensor.dtype.lanes = 4;
  refused(v, "no safetensors equivalent");
  v = w.view();
  v.name = "__metadata__";
  refused(v, "reserved");

  std::vector<flare_named_tensor> twice{w.view(), w.view()};
  CHECK_THROWS_WITH_AS(save_safetensors(path, twice), doctest::Contains("appears twice"), StorageError);
}

TEST_CASE("row-major strides and a byte offset are accepted") {
  TempFolder dir;
  auto w = make_tensor<float>("w", {kDLFloat, 32, 1}, {1, 3}, {9, 1, 2, 3});
  auto v = w.view();
  w.shape = {1, 3};
  std::int64_t strides[] = {99, 1};  // the stride of an extent-1 dimension does not matter
  v.tensor.strides = strides;
  v.tensor.byte_offset = sizeof(float);
  std::vector<flare_named_tensor> list{v};
  save_safetensors(dir / "w.safetensors", list);
  auto loaded = load_safetensors(dir / "w.safetensors");
  std::vector<float> values(3);
  std::memcpy(values.data(), loaded.tensors.at(0).data.data(), 12);
  CHECK(values == std::vector<float>{1, 2, 3});
}

TEST_CASE("Python reads the file with only json and numpy") {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: /usr/bin/python3 with numpy is not available");
    return;
  }
  TempFolder dir;
  auto tensors = sample_tensors();
  save_safetensors(dir / "model.safetensors", views(tensors), {{"round", "2"}});
  auto out = dir / "read.json";
  std::string command = std::string("/usr/bin/python3 ") + FLARE_READ_SAFETENSORS_PY + " '" +
                        (dir / "model.safetensors").string() + "' > '" + out.string() + "'";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "command failed: ", command);
  auto read = nlohmann::json::parse(read_bytes(out));

  using J = nlohmann::json;
  CHECK(read["metadata"] == J{{"round", "2"}});
  auto values = [&](const char* name) { return read["tensors"][name]["values"]; };
  CHECK(values("conv1.weight") == J::parse("[0.5, -1.25, 2.0, 3.5, -0.0, 0.0010000000474974513]"));
  CHECK(read["tensors"]["conv1.weight"]["shape"] == J{2, 3});
  CHECK(values("f64") == J{1.5, -2.25, 1e10, 0.0});
  CHECK(values("f16") == J{1.0, -2.0, 0.5, 0.0});
  CHECK(values("bf16") == J{1.0, 3.0, -0.5});
  CHECK(values("i64") == J{-1, 2, 1LL << 40, 7});
  CHECK(values("i8") == J{-128, 0, 127});
  CHECK(values("u8") == J{0, 1, 128, 255});
  CHECK(values("mask") == J{true, false, false, true, true});
  CHECK(values("num_batches") == J{42.0});
  CHECK(read["tensors"]["num_batches"]["shape"] == J::array());
  CHECK(read["tensors"]["empty"]["shape"] == J{0, 3});
}
