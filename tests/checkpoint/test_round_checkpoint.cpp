#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/round_checkpoint.hpp"
#include "temp_folder.hpp"

using flare::checkpoint::checkpoint_file_name;
using flare::checkpoint::load_latest_checkpoint;
using flare::checkpoint::RoundCheckpoint;
using flare::checkpoint::write_checkpoint;
using flare::tensor::OwnedTensor;
using flare::testing::read_bytes;
using flare::testing::TempFolder;
using flare::testing::write_bytes;

namespace {

OwnedTensor tensor_of(std::string name, DLDataType dtype, std::vector<std::int64_t> shape,
                      unsigned seed) {
  OwnedTensor t{std::move(name), dtype, std::move(shape), {}};
  std::size_t count = 1;
  for (auto d : t.shape) count *= static_cast<std::size_t>(d);
  t.data.resize(count * dtype.bits / 8);
  for (std::size_t i = 0; i < t.data.size(); ++i)
    t.data[i] = static_cast<std::byte>((i * 131 + seed * 17 + 7) & 0xff);
  return t;
}

RoundCheckpoint checkpoint_of(std::int64_t round, std::string fingerprint = "job-a") {
  RoundCheckpoint c;
  c.round = round;
  c.global_model = {tensor_of("fc.weight", {kDLFloat, 32, 1}, {3, 4}, 1),
                    tensor_of("fc.bias", {kDLBfloat, 16, 1}, {3}, 2),
                    tensor_of("empty", {kDLFloat, 32, 1}, {0, 5}, 3),
                    tensor_of("steps", {kDLInt, 64, 1}, {}, 4)};
  // Same name as a model tensor: the two sets must stay apart.
  c.aggregator.tensors = {tensor_of("fc.weight", {kDLFloat, 64, 1}, {3, 4}, 5),
                          tensor_of("also_empty", {kDLUInt, 8, 1}, {0}, 6)};
  c.aggregator.meta_json = R"({"momentum":0.9,"round":)" + std::to_string(round) + "}";
  c.best_model_json = R"({"round":1,"accuracy":0.8125})";
  c.rng_state = std::string("mt\0\xff\x01 state ", 13) + std::to_string(round);
  c.job_fingerprint = std::move(fingerprint);
  return c;
}

void check_same_tensors(const std::vector<OwnedTensor>& got, const std::vector<OwnedTensor>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].name == want[i].name);
    CHECK(got[i].dtype.code == want[i].dtype.code);
    CHECK(got[i].dtype.bits == want[i].dtype.bits);
    CHECK(got[i].dtype.lanes == want[i].dtype.lanes);
    CHECK(got[i].shape == want[i].shape);
    CHECK(got[i].data == want[i].data);
  }
}

bool reason_names(const flare::checkpoint::CheckpointRefusal& r, const std::string& file,
                  const std::string& words) {
  return r.file.filename() == file && r.reason.find(words) != std::string::npos;
}

}  // namespace

TEST_CASE("a round checkpoint round-trips bit for bit") {
  TempFolder folder;
  auto written = checkpoint_of(7);
  auto file = write_checkpoint(folder.path(), written);
  CHECK(file == folder / "checkpoint_round_7.ckpt");

  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.checkpoint);
  CHECK(latest.refusals.empty());
  CHECK(latest.file == file);
  const auto& read = *latest.checkpoint;
  CHECK(read.round == 7);
  check_same_tensors(read.global_model, written.global_model);
  check_same_tensors(read.aggregator.tensors, written.aggregator.tensors);
  CHECK(read.aggregator.meta_json == written.aggregator.meta_json);
  CHECK(read.best_model_json == written.best_model_json);
  CHECK(read.rng_state == written.rng_state);
  CHECK(read.job_fingerprint == "job-a");
}

TEST_CASE("empty aggregator state and figures round-trip as empty") {
  TempFolder folder;
  auto written = checkpoint_of(0);
  written.aggregator = {};
  written.best_model_json.clear();
  written.rng_state.clear();
  write_checkpoint(folder.path(), written);
  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.checkpoint);
  CHECK(latest.checkpoint->aggregator.tensors.empty());
  CHECK(latest.checkpoint->aggregator.meta_json.empty());
  CHECK(latest.checkpoint->best_model_json.empty());
  CHECK(latest.checkpoint->rng_state.empty());
  check_same_tensors(latest.checkpoint->global_model, written.global_model);
}

TEST_CASE("a truncated newest checkpoint is refused by name and the previous one is loaded") {
  TempFolder folder;
  write_checkpoint(folder.path(), checkpoint_of(1));
  auto newest = write_checkpoint(folder.path(), checkpoint_of(2));
  auto bytes = read_bytes(newest);

  SUBCASE("cut in the tensor bytes") { write_bytes(newest, bytes.substr(0, bytes.size() - 40)); }
  SUBCASE("cut in the header") { write_bytes(newest, bytes.substr(0, 20)); }
  SUBCASE("the checksum trailer cut off") { write_bytes(newest, bytes.substr(0, bytes.size() - 32)); }
  SUBCASE("part of the checksum cut off") { write_bytes(newest, bytes.substr(0, bytes.size() - 5)); }

  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.checkpoint);
  CHECK(latest.checkpoint->round == 1);
  CHECK(latest.file.filename() == "checkpoint_round_1.ckpt");
  REQUIRE(latest.refusals.size() == 1);
  CHECK_MESSAGE(reason_names(latest.refusals[0], "checkpoint_round_2.ckpt", "truncated"),
                latest.refusals[0].reason);
}

TEST_CASE("a changed byte anywhere in a checkpoint is detected") {
  TempFolder folder;
  auto file = write_checkpoint(folder.path(), checkpoint_of(3));
  const auto good = read_bytes(file);
  for (std::size_t at = 0; at < good.size(); ++at) {
    auto changed = good;
    changed[at] = static_cast<char>(changed[at] ^ 0x10);
    write_bytes(file, changed);
    auto latest = load_latest_checkpoint(folder.path(), "job-a");
    CAPTURE(at);
    CHECK_FALSE(latest.checkpoint);
    REQUIRE(latest.refusals.size() == 1);
    CHECK(latest.refusals[0].file == file);
  }
  // One in the tensor bytes (not the header) is named a mismatch, not a parse error.
  auto changed = good;
  changed[good.size() - 40] = static_cast<char>(changed[good.size() - 40] ^ 0x01);
  write_bytes(file, changed);
  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.refusals.size() == 1);
  CHECK_MESSAGE(latest.refusals[0].reason.find("SHA-256 mismatch") != std::string::npos,
                latest.refusals[0].reason);
}

TEST_CASE("another job's checkpoint is refused") {
  TempFolder folder;
  write_checkpoint(folder.path(), checkpoint_of(4, "job-b"));
  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  CHECK_FALSE(latest.checkpoint);
  REQUIRE(latest.refusals.size() == 1);
  CHECK_MESSAGE(reason_names(latest.refusals[0], "checkpoint_round_4.ckpt", "another job"),
                latest.refusals[0].reason);
  CHECK(latest.refusals[0].reason.find("job-b") != std::string::npos);
}

TEST_CASE("a checkpoint renamed to another round is refused") {
  TempFolder folder;
  auto file = write_checkpoint(folder.path(), checkpoint_of(1));
  std::filesystem::rename(file, folder / checkpoint_file_name(9));
  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  CHECK_FALSE(latest.checkpoint);
  REQUIRE(latest.refusals.size() == 1);
  CHECK_MESSAGE(reason_names(latest.refusals[0], "checkpoint_round_9.ckpt", "holds round 1"),
                latest.refusals[0].reason);
}

TEST_CASE("with no valid checkpoint there is none, and every file's reason is given") {
  TempFolder folder;
  auto truncated = write_checkpoint(folder.path(), checkpoint_of(1), 10);
  auto changed = write_checkpoint(folder.path(), checkpoint_of(2), 10);
  write_checkpoint(folder.path(), checkpoint_of(3, "job-b"), 10);
  auto no_trailer = write_checkpoint(folder.path(), checkpoint_of(4), 10);
  write_bytes(truncated, read_bytes(truncated).substr(0, 100));
  auto bytes = read_bytes(changed);
  bytes[bytes.size() - 50] ^= 0x01;
  write_bytes(changed, bytes);
  bytes = read_bytes(no_trailer);
  write_bytes(no_trailer, bytes.substr(0, bytes.size() - 32));
  write_bytes(folder / checkpoint_file_name(5), "");

  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  CHECK_FALSE(latest.checkpoint);
  REQUIRE(latest.refusals.size() == 5);  // newest first
  CHECK(reason_names(latest.refusals[0], "checkpoint_round_5.ckpt", "truncated"));
  CHECK(reason_names(latest.refusals[1], "checkpoint_round_4.ckpt", "trailer is missing"));
  CHECK(reason_names(latest.refusals[2], "checkpoint_round_3.ckpt", "another job"));
  CHECK(reason_names(latest.refusals[3], "checkpoint_round_2.ckpt", "SHA-256 mismatch"));
  CHECK(reason_names(latest.refusals[4], "checkpoint_round_1.ckpt", "truncated"));
}

TEST_CASE("an empty or missing folder holds no checkpoint") {
  TempFolder folder;
  auto empty = load_latest_checkpoint(folder.path(), "job-a");
  CHECK_FALSE(empty.checkpoint);
  CHECK(empty.refusals.empty());
  auto missing = load_latest_checkpoint(folder / "none", "job-a");
  CHECK_FALSE(missing.checkpoint);
  CHECK(missing.refusals.empty());
}

TEST_CASE("only the newest N checkpoints are kept") {
  TempFolder folder;
  for (int round = 1; round <= 5; ++round) write_checkpoint(folder.path(), checkpoint_of(round));
  auto names = folder.entries();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint_round_4.ckpt", "checkpoint_round_5.ckpt"});

  write_checkpoint(folder.path(), checkpoint_of(6), 3);
  write_checkpoint(folder.path(), checkpoint_of(7), 3);
  names = folder.entries();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint_round_5.ckpt", "checkpoint_round_6.ckpt",
                                          "checkpoint_round_7.ckpt"});
  // Rounds sort as numbers, not as text: round 10 is newer than round 9.
  write_checkpoint(folder.path(), checkpoint_of(9), 1);
  write_checkpoint(folder.path(), checkpoint_of(10), 1);
  CHECK(folder.entries() == std::vector<std::string>{"checkpoint_round_10.ckpt"});
}

TEST_CASE("a temp file left by a crash mid-write is ignored and never loaded") {
  TempFolder folder;
  write_checkpoint(folder.path(), checkpoint_of(1));
  // A complete round-2 file under a temp name: a crash between fsync and rename.
  TempFolder elsewhere;
  auto complete = read_bytes(write_checkpoint(elsewhere.path(), checkpoint_of(2)));
  write_bytes(folder / ".checkpoint_round_2.ckpt.tmp-4242-0", complete);
  write_bytes(folder / ".checkpoint_round_3.ckpt.tmp-4242-1", complete.substr(0, 64));

  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.checkpoint);
  CHECK(latest.checkpoint->round == 1);
  CHECK(latest.refusals.empty());

  // The next write is not disturbed by them.
  write_checkpoint(folder.path(), checkpoint_of(2));
  latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.checkpoint);
  CHECK(latest.checkpoint->round == 2);
}

TEST_CASE("older checkpoints are kept when the new one cannot be written") {
  TempFolder folder;
  write_checkpoint(folder.path(), checkpoint_of(1));
  write_checkpoint(folder.path(), checkpoint_of(2));
  // A folder in the new file's place: the rename fails after the temp file is written.
  std::filesystem::create_directory(folder / checkpoint_file_name(3));
  CHECK_THROWS_AS(write_checkpoint(folder.path(), checkpoint_of(3)), flare::storage::StorageError);
  CHECK(std::filesystem::exists(folder / checkpoint_file_name(1)));
  CHECK(std::filesystem::exists(folder / checkpoint_file_name(2)));
  auto latest = load_latest_checkpoint(folder.path(), "job-a");
  REQUIRE(latest.checkpoint);
  CHECK(latest.checkpoint->round == 2);
  REQUIRE(latest.refusals.size() == 1);
  CHECK(reason_names(latest.refusals[0], "checkpoint_round_3.ckpt", "unreadable"));
}
