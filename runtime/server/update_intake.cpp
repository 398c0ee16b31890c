#include "server/update_intake.hpp"

#include <cstring>

#include <flare/plugin.hpp>

namespace flare::server {

namespace {

// The first element of `n` in `data` whose bits say NaN or infinity (all
// exponent bits set), or n when there is none. The first pass only ORs a
// flag, which vectorises; the second, to name the element, runs only on a
// bad piece.
template <class Bits>
uint64_t first_non_finite(const std::byte* data, uint64_t n, Bits exponent) {
  const auto at = [&](uint64_t i) {
    Bits v;
    std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
    return (v & exponent) == exponent;
  };
  bool bad = false;
  for (uint64_t i = 0; i < n; ++i) bad |= at(i);
  if (!bad) return n;
  for (uint64_t i = 0; i < n; ++i)
    if (at(i)) return i;
  return n;
}

// Integer tensors have no non-finite values; float ones of every width do.
uint64_t first_non_finite(DLDataType t, const std::byte* data, uint64_t n) {
  if (t.lanes != 1) return n;
  if (t.code == kDLFloat && t.bits == 32) return first_non_finite<uint32_t>(data, n, 0x7f800000u);
  if (t.code == kDLFloat && t.bits == 64)
    return first_non_finite<uint64_t>(data, n, 0x7ff0000000000000ull);
  if (t.code == kDLFloat && t.bits == 16) return first_non_finite<uint16_t>(data, n, 0x7c00);
  if (t.code == kDLBfloat && t.bits == 16) return first_non_finite<uint16_t>(data, n, 0x7f80);
  return n;
}

host::SiteUpdateFields header_fields(const SiteUpdate& u) {
  return {.site = u.site,
          .round = u.round,
          .num_samples = u.num_samples,
          .num_steps = u.num_steps,
          .metrics_json = u.train_metrics.dump(),
          .meta_json = u.meta.dump()};
}

}  // namespace

UpdateIntake::UpdateIntake(SharedAggregator& aggregator, GlobalModelPtr global, SiteUpdate update,
                           const std::filesystem::path& spool_dir,
                           std::function<void(const host::PluginCallError&)> aggregator_failed)
    : aggregator_(aggregator),
      global_(std::move(global)),
      update_(std::move(update)),
      spool_(spool_dir),
      aggregator_failed_(std::move(aggregator_failed)),
      global_seen_(global_->views().size(), false) {
  std::lock_guard lock(aggregator_.mutex);
  round_ = aggregator_.rounds_begun;
  streamed_ = aggregator_.plugin.folds_chunks();
  if (!streamed_) return;
  id_ = ++aggregator_.next_update_id;
  try {
    aggregator_.plugin.begin_update(id_, header_fields(update_));
  } catch (const host::PluginCallError& e) {
    // Its refusal of the update (a weight <= 0) is the site's to answer for.
    if (e.code() != FLARE_ERROR_INVALID_ARGUMENT) throw;
    throw InvalidRequest(what() + " refused by the " + e.what());
  }
  aggregator_.open.insert(this);
}

UpdateIntake::~UpdateIntake() {
  if (!streamed_) return;
  std::optional<host::PluginCallError> failed;
  {
    std::lock_guard lock(aggregator_.mutex);
    aggregator_.open.erase(this);
    // A new round began: the aggregator already forgot this round's updates.
    if (!committed_ && aggregator_.rounds_begun == round_) failed = take_back_locked();
  }
  if (failed && aggregator_failed_) aggregator_failed_(*failed);
}

std::optional<host::PluginCallError> SharedAggregator::take_back_open_locked() {
  std::optional<host::PluginCallError> failed;
  for (UpdateIntake* intake : open) {
    if (intake->committed_) continue;
    if (auto e = intake->take_back_locked(); e && !failed) failed = std::move(e);
  }
  return failed;
}

std::string UpdateIntake::what() const {
  return "update from " + update_.site + " for round " + std::to_string(update_.round + 1);
}

std::unique_lock<std::mutex> UpdateIntake::lock_round() const {
  std::unique_lock lock(aggregator_.mutex);
  if (aggregator_.rounds_begun != round_ || taken_back_)
    throw RejectedRequest(what() + " came after the round ended");
  return lock;
}

void UpdateIntake::begin_tensor(size_t index, const transport::TensorDesc& desc) {
  const std::string tensor = what() + ": tensor '" + desc.name + "'";
  Tensor t{.desc = std::make_shared<const transport::TensorDesc>(desc)};
  if (desc.aux) {
    t.part = FLARE_UPDATE_AUX;
    t.tensor_index = aux_count_++;
  } else {
    if (aux_count_ > 0) throw InvalidRequest(tensor + " is a weight after the aux tensors");
    const auto at = global_->index_of(desc.name);
    if (!at) throw InvalidRequest(tensor + " is not in the global model");
    if (global_seen_[*at]) throw InvalidRequest(tensor + " appears twice");
    global_seen_[*at] = true;
    if (const auto why = global_->mismatch(*at, desc.dtype, desc.shape); !why.empty())
      throw InvalidRequest(tensor + why);
    t.part = FLARE_UPDATE_WEIGHTS;
    t.tensor_index = *at;
  }
  if (index != tensors_.size()) throw std::logic_error("UpdateIntake: tensors out of order");
  tensors_.push_back(std::move(t));
}

flare_update_chunk UpdateIntake::chunk_of(int32_t part, size_t tensor_index,
                                          const flare_named_tensor& view, uint64_t offset,
                                          uint64_t n, const void* data) {
  flare_update_chunk c{};
  c.struct_size = sizeof(c);
  c.part = part;
  c.tensor_index = tensor_index;
  c.tensor = &view;
  c.element_offset = offset;
  c.num_elements = n;
  c.data = data;
  return c;
}

void UpdateIntake::piece(size_t index, uint64_t element_offset, uint64_t n,
                         const std::byte* data) {
  Tensor& t = tensors_.at(index);
  if (const uint64_t bad = first_non_finite(t.desc->dtype, data, n); bad < n) {
    throw InvalidRequest(what() + ": tensor '" + t.desc->name +
                         "' has a non-finite value (NaN or infinity) at element " +
                         std::to_string(element_offset + bad));
  }
  // Spooled before it is folded: a chunk folded but not written could not be
  // taken back.
  const uint64_t at = spool_.append({data, n * t.desc->element_bytes}, element_offset == 0);
  if (element_offset == 0) t.spool_offset = at;
  t.received = element_offset + n;
  if (!streamed_) return;
  const flare_named_tensor view = t.desc->view();
  const auto lock = lock_round();
  try {
    aggregator_.plugin.accept_chunk(
        id_, chunk_of(t.part, t.tensor_index, view, element_offset, n, data));
  } catch (const host::PluginCallError& e) {
    if (e.code() != FLARE_ERROR_INVALID_ARGUMENT) throw;
    throw InvalidRequest(what() + " refused by the " + e.what());
  }
  folded_.push_back({t.desc, t.part, t.tensor_index, element_offset, n, at});
}

void UpdateIntake::commit() {
  for (size_t i = 0; i < global_seen_.size(); ++i) {
    if (!global_seen_[i])
      throw InvalidRequest(what() + ": tensor '" + global_->views()[i].name +
                           "' of the global model is missing");
  }
  for (const auto& t : tensors_) {
    if (t.received != t.desc->num_elements)  // the stream reader checks this too
      throw InvalidRequest(what() + ": tensor '" + t.desc->name + "' is incomplete");
  }
  if (streamed_) {
    const auto lock = lock_round();
    try {
      aggregator_.plugin.end_update(id_);
    } catch (const host::PluginCallError& e) {
      if (e.code() != FLARE_ERROR_INVALID_ARGUMENT) throw;
      throw InvalidRequest(what() + " refused by the " + e.what());
    }
    committed_ = true;
  } else {
    commit_whole();
  }
  // The last update completes the round, whose model the server then lets go
  // before it copies out the next: not held here a moment longer.
  global_.reset();
}

void UpdateIntake::commit_whole() {
  // An aggregator without ABI 1.3 takes the update whole: from the spool,
  // mapped, so the server's memory holds it only while the call runs (or,
  // kept, only the pages the aggregator reads and has not handed back).
  auto mapping = spool_.map();
  std::vector<flare_named_tensor> weights, aux;
  for (const auto& t : tensors_) {
    flare_named_tensor v = t.desc->view();
    if (t.desc->num_elements > 0)
      v.tensor.data = const_cast<std::byte*>(mapping.data() + t.spool_offset);
    (t.part == FLARE_UPDATE_AUX ? aux : weights).push_back(v);
  }
  const host::SiteUpdateStruct whole(header_fields(update_), std::move(weights), std::move(aux));
  const auto lock = lock_round();
  try {
    aggregator_.plugin.accept(whole.raw());
  } catch (const host::PluginCallError& e) {
    // The aggregator checks last, and refuses a bad update (e.g. a weight
    // <= 0) before folding anything in: the site's to answer for.
    if (e.code() != FLARE_ERROR_INVALID_ARGUMENT) throw;
    throw InvalidRequest(what() + " refused by the " + e.what());
  }
  // One that needs every update at finalize (median, Krum) keeps the views:
  // the file stays mapped until the round ends.
  if (aggregator_.plugin.keeps_updates()) aggregator_.kept.keep(std::move(mapping));
  committed_ = true;
}

std::optional<host::PluginCallError> UpdateIntake::take_back_locked() noexcept {
  if (taken_back_) return std::nullopt;
  taken_back_ = true;
  try {
    std::vector<std::byte> buffer;
    for (const Chunk& c : folded_) {
      buffer.resize(c.num_elements * c.desc->element_bytes);
      spool_.read(c.spool_offset, buffer);
      const flare_named_tensor view = c.desc->view();
      aggregator_.plugin.retract_chunk(
          id_, chunk_of(c.part, c.tensor_index, view, c.element_offset, c.num_elements,
                        buffer.data()));
    }
    aggregator_.plugin.abort_update(id_);
  } catch (const host::PluginCallError& e) {
    return e;
  } catch (const std::exception& e) {
    // The spool could not be read back: the aggregate is unknown, so the
    // round cannot go on. Reported as the aggregator's call that could not run.
    return host::PluginCallError(aggregator_.plugin.plugin(), "retract_chunk", FLARE_ERROR_IO,
                                 e.what());
  }
  return std::nullopt;
}

}  // namespace flare::server
