#include "checkpoint/round_checkpoint.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_verification.hpp"
#include "storage/atomic_file.hpp"
#include "storage/safetensors.hpp"

namespace flare::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "flare-round-checkpoint";
constexpr const char* kVersion = "1";
constexpr const char* kModelPrefix = "model/";
constexpr const char* kAggregatorPrefix = "aggregator/";
constexpr const char* kRngTensor = "rng_state";
constexpr std::string_view kNameStart = "checkpoint_round_";
constexpr std::string_view kNameEnd = ".ckpt";

// A round written in decimal, digit by digit (no locale, no sign, no overflow).
std::optional<std::int64_t> parse_round(std::string_view digits) {
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  std::int64_t round = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    round = round * 10 + (c - '0');
  }
  return round;
}

// The round of a file named exactly checkpoint_file_name(round), or nothing
// for any other name (temp files of an interrupted write, "..._02.ckpt").
std::optional<std::int64_t> round_of_file_name(const std::string& name) {
  if (!name.starts_with(kNameStart) || !name.ends_with(kNameEnd) ||
      name.size() < kNameStart.size() + kNameEnd.size())
    return std::nullopt;
  const auto round = parse_round(std::string_view(name).substr(
      kNameStart.size(), name.size() - kNameStart.size() - kNameEnd.size()));
  if (!round || checkpoint_file_name(*round) != name) return std::nullopt;
  return round;
}

}  // namespace

std::vector<CheckpointFile> checkpoint_files(const fs::path& folder) {
  std::vector<CheckpointFile> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (auto round = round_of_file_name(entry.path().filename().string()))
      files.push_back({*round, entry.path()});
  }
  std::sort(files.begin(), files.end(),
            [](const CheckpointFile& a, const CheckpointFile& b) { return a.round > b.round; });
  return files;
}

namespace {

void add_views(std::vector<flare_named_tensor>& views, std::vector<std::string>& names,
               std::span<const flare_named_tensor> tensors, const std::string& prefix) {
  for (const auto& t : tensors) {
    names.push_back(prefix + t.name);
    views.push_back(t);
  }
}

std::string names_json(std::span<const flare_named_tensor> tensors) {
  auto names = nlohmann::json::array();
  for (const auto& t : tensors) names.push_back(t.name);
  return names.dump();
}

// The tensors named in `order_key`'s JSON list, in that order, from `by_name`.
std::vector<tensor::OwnedTensor> take_tensors(std::map<std::string, tensor::OwnedTensor>& by_name,
                                              const std::map<std::string, std::string>& meta,
                                              const std::string& order_key,
                                              const std::string& prefix) {
  std::vector<tensor::OwnedTensor> tensors;
  for (const auto& name : nlohmann::json::parse(meta.at(order_key))) {
    auto it = by_name.find(prefix + name.get<std::string>());
    if (it == by_name.end())
      throw storage::StorageError("tensor '" + prefix + name.get<std::string>() +
                                  "' listed in " + order_key + " is missing");
    it->second.name = name.get<std::string>();
    tensors.push_back(std::move(it->second));
    by_name.erase(it);
  }
  return tensors;
}

const std::string& required(const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) throw storage::StorageError("metadata has no \"" + key + "\"");
  return it->second;
}

// Parses a file whose checksum verified; throws StorageError for what is wrong.
RoundCheckpoint read_verified(const fs::path& file, std::int64_t round_in_name) {
  std::ifstream in(file, std::ios::binary);
  auto content = storage::read_safetensors(in, fs::file_size(file) - kDigestBytes, file);
  const auto& meta = content.metadata;
  if (required(meta, "format") != kFormat || required(meta, "version") != kVersion)
    throw storage::StorageError("not a round checkpoint of version " + std::string(kVersion) +
                                " (format \"" + meta.at("format") + "\", version \"" +
                                meta.at("version") + "\")");
  RoundCheckpoint checkpoint;
  auto round = parse_round(required(meta, "round"));
  if (!round) throw storage::StorageError("metadata round \"" + meta.at("round") + "\" is not a round");
  checkpoint.round = *round;
  if (checkpoint.round != round_in_name)
    throw storage::StorageError("holds round " + meta.at("round") + " but its name says " +
                                std::to_string(round_in_name));
  checkpoint.job_fingerprint = required(meta, "job_fingerprint");
  checkpoint.aggregator.meta_json = required(meta, "aggregator_meta");
  checkpoint.best_model_json = required(meta, "best_model");
  std::map<std::string, tensor::OwnedTensor> by_name;
  for (auto& t : content.tensors) by_name[t.name] = std::move(t);
  required(meta, "model_tensors");
  required(meta, "aggregator_tensors");
  checkpoint.global_model = take_tensors(by_name, meta, "model_tensors", kModelPrefix);
  checkpoint.aggregator.tensors = take_tensors(by_name, meta, "aggregator_tensors", kAggregatorPrefix);
  auto rng = by_name.find(kRngTensor);
  if (rng == by_name.end()) throw storage::StorageError("tensor 'rng_state' is missing");
  const auto& bytes = rng->second.data;
  checkpoint.rng_state.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return checkpoint;
}

}  // namespace

std::string checkpoint_file_name(std::int64_t round) {
  return std::string(kNameStart) + std::to_string(round) + std::string(kNameEnd);
}

fs::path write_checkpoint(const fs::path& folder, const RoundCheckpoint& checkpoint, int keep) {
  const auto model = tensor::views_of(checkpoint.global_model);
  const auto aggregator = tensor::views_of(checkpoint.aggregator.tensors);
  return write_checkpoint(folder,
                          RoundCheckpointView{.round = checkpoint.round,
                                              .global_model = model,
                                              .aggregator_tensors = aggregator,
                                              .aggregator_meta_json = checkpoint.aggregator.meta_json,
                                              .best_model_json = checkpoint.best_model_json,
                                              .rng_state = checkpoint.rng_state,
                                              .job_fingerprint = checkpoint.job_fingerprint},
                          keep);
}

fs::path write_checkpoint(const fs::path& folder, const RoundCheckpointView& checkpoint, int keep) {
  if (keep < 1) throw std::invalid_argument("write_checkpoint: keep must be at least 1");
  if (checkpoint.round < 0)
    throw std::invalid_argument("write_checkpoint: round " + std::to_string(checkpoint.round) +
                                " is negative");
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw storage::StorageError(folder.string() + ": cannot create: " + ec.message());
  const auto file = folder / checkpoint_file_name(checkpoint.round);

  std::vector<flare_named_tensor> views;
  std::vector<std::string> names;  // the prefixed names the views point into
  names.reserve(checkpoint.global_model.size() + checkpoint.aggregator_tensors.size());
  add_views(views, names, checkpoint.global_model, kModelPrefix);
  add_views(views, names, checkpoint.aggregator_tensors, kAggregatorPrefix);
  // The names point into `names`, complete now (reserved: never moved).
  for (size_t i = 0; i < names.size(); ++i) views[i].name = names[i].c_str();
  const std::string rng_state(checkpoint.rng_state);
  std::int64_t rng_length = static_cast<std::int64_t>(rng_state.size());
  flare_named_tensor rng{};
  rng.name = kRngTensor;
  rng.tensor.data = const_cast<char*>(rng_state.data());
  rng.tensor.device = {kDLCPU, 0};
  rng.tensor.ndim = 1;
  rng.tensor.dtype = {kDLUInt, 8, 1};
  rng.tensor.shape = &rng_length;
  views.push_back(rng);

  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"version", kVersion},
      {"round", std::to_string(checkpoint.round)},
      {"job_fingerprint", std::string(checkpoint.job_fingerprint)},
      {"aggregator_meta", std::string(checkpoint.aggregator_meta_json)},
      {"best_model", std::string(checkpoint.best_model_json)},
      {"model_tensors", names_json(checkpoint.global_model)},
      {"aggregator_tensors", names_json(checkpoint.aggregator_tensors)},
  };
  storage::SafetensorsParts parts;
  try {
    parts = storage::safetensors_parts(views, metadata, file);
  } catch (const nlohmann::json::exception& e) {  // a field that is not UTF-8
    throw storage::StorageError(file.string() + ": " + e.what());
  }
  common::Sha256 sha;
  storage::AtomicFile out(file);
  out.write(parts.head);
  sha.update(std::as_bytes(std::span(parts.head.data(), parts.head.size())));
  for (auto body : parts.bodies) {
    out.write(body);
    sha.update(body);
  }
  auto digest = sha.finish();
  out.write(std::span<const std::byte>(digest));
  out.commit();

  auto files = checkpoint_files(folder);
  for (std::size_t i = static_cast<std::size_t>(keep); i < files.size(); ++i)
    fs::remove(files[i].path, ec);  // a file left behind is pruned by the next write
  return file;
}

LatestCheckpoint load_latest_checkpoint(const fs::path& folder, std::string_view job_fingerprint) {
  LatestCheckpoint latest;
  for (const auto& candidate : checkpoint_files(folder)) {
    auto refuse = [&](std::string reason) {
      latest.refusals.push_back({candidate.path, std::move(reason)});
    };
    if (auto problem = checksum_problem(candidate.path)) {
      refuse(*problem);
      continue;
    }
    try {
      auto checkpoint = read_verified(candidate.path, candidate.round);
      if (checkpoint.job_fingerprint != job_fingerprint) {
        refuse("another job's checkpoint: job fingerprint \"" + checkpoint.job_fingerprint +
               "\", this job's is \"" + std::string(job_fingerprint) + "\"");
        continue;
      }
      latest.checkpoint = std::move(checkpoint);
      latest.file = candidate.path;
      return latest;
    } catch (const std::exception& e) {  // StorageError, a metadata list that is not JSON
      refuse(std::string("unreadable: ") + e.what());
    }
  }
  return latest;
}

}  // namespace flare::checkpoint
