// One site's update as it streams in (transport::ModelStreamReader calls it
// tensor by tensor, piece by piece): every tensor checked against the global
// model (name, dtype, shape, each once) and every piece's values finite
// before it reaches the aggregator, which folds it in at once when it can
// (ABI 1.3) or is handed the whole update at commit. A refused update, also
// one refused in its last chunk or cut off mid-stream and not resumed (the
// RPC edge holds a cut one a while: server/parked_transfers.hpp), leaves no
// trace: its folded chunks are read back from the spool and retracted. Memory stays one
// part of a model per upload in flight, whatever the model's size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plugin_host/plugin_instances.hpp"
#include "server/domain.hpp"
#include "server/global_model.hpp"
#include "server/kept_updates.hpp"
#include "server/update_spool.hpp"
#include "transport/model_stream.hpp"

namespace flare::server {

class UpdateIntake;

// The aggregator plugin as the server shares it between the controller and
// every upload in flight: one call at a time, a count of rounds begun, so
// that a late upload of a round that ended can never reach the next one, and
// the uploads open in it, so the round's end can take back those that will
// not finish (an aggregator cannot finalize with half-folded updates).
struct SharedAggregator {
  SharedAggregator(host::AggregatorInstance& instance, KeptUpdates& kept_updates)
      : plugin(instance), kept(kept_updates) {}
  // Under `mutex`, before finalize: every open update not yet counted is
  // taken back; its upload is then refused at its next piece. The
  // aggregator's failure to take one back, if it failed.
  std::optional<host::PluginCallError> take_back_open_locked();

  host::AggregatorInstance& plugin;
  // The round's updates, for an aggregator that keeps them until finalize.
  KeptUpdates& kept;
  std::mutex mutex;
  uint64_t rounds_begun = 0;    // guarded by mutex
  uint64_t next_update_id = 0;  // guarded by mutex
  std::set<UpdateIntake*> open;  // guarded by mutex
};

class UpdateIntake final : public transport::TensorSink {
 public:
  // `update`: its header, already checked against the round. Opens the
  // update in the aggregator (begin_update), which may refuse it
  // (InvalidRequest). `aggregator_failed` hears of a failure to take a
  // refused update back, which leaves the aggregate unknown (called without
  // the aggregator's lock held).
  UpdateIntake(SharedAggregator& aggregator, GlobalModelPtr global, SiteUpdate update,
               const std::filesystem::path& spool_dir,
               std::function<void(const host::PluginCallError&)> aggregator_failed);
  // Takes the update back unless it was committed.
  ~UpdateIntake() override;
  UpdateIntake(const UpdateIntake&) = delete;
  UpdateIntake& operator=(const UpdateIntake&) = delete;

  void begin_tensor(size_t index, const transport::TensorDesc& tensor) override;
  void piece(size_t index, uint64_t element_offset, uint64_t n, const std::byte* data) override;

  // The update is whole (else InvalidRequest naming the missing tensor) and
  // now counts in the round's aggregate.
  void commit();
  const SiteUpdate& update() const { return update_; }
  // "update from <site> for round <n>": how every refusal of it begins.
  std::string what() const;

 private:
  struct Tensor {
    // Shared with the folded chunks, which the round's end may read from
    // another thread while this upload's thread adds tensors.
    std::shared_ptr<const transport::TensorDesc> desc;
    int32_t part = 0;         // flare_update_part
    size_t tensor_index = 0;  // in the global model (weights) or among the aux tensors
    uint64_t spool_offset = 0;  // where its first piece is (its pieces are contiguous)
    uint64_t received = 0;      // elements
  };
  struct Chunk {  // a piece folded into the aggregate, to retract on refusal
    std::shared_ptr<const transport::TensorDesc> desc;
    int32_t part;
    size_t tensor_index;
    uint64_t element_offset, num_elements, spool_offset;
  };

  static flare_update_chunk chunk_of(int32_t part, size_t tensor_index,
                                     const flare_named_tensor& view, uint64_t offset, uint64_t n,
                                     const void* data);
  // Under the aggregator's lock, refused when the round it belongs to ended.
  std::unique_lock<std::mutex> lock_round() const;
  void commit_whole();
  // Retracts the folded chunks and aborts the update, once (under the
  // aggregator's lock); returns the aggregator's failure, if any.
  std::optional<host::PluginCallError> take_back_locked() noexcept;
  friend struct SharedAggregator;

  SharedAggregator& aggregator_;
  GlobalModelPtr global_;  // until committed
  SiteUpdate update_;
  UpdateSpool spool_;
  std::function<void(const host::PluginCallError&)> aggregator_failed_;
  bool streamed_ = false;  // the aggregator folds chunks (ABI 1.3)
  uint64_t id_ = 0;
  uint64_t round_ = 0;  // SharedAggregator::rounds_begun when opened
  bool committed_ = false;
  bool taken_back_ = false;  // guarded by the aggregator's mutex
  std::vector<Tensor> tensors_;         // in stream order
  std::vector<bool> global_seen_;       // by global model index
  size_t aux_count_ = 0;
  std::vector<Chunk> folded_;  // guarded by the aggregator's mutex
};

}  // namespace flare::server
