// The round of an aggregator that needs every update at once and so keeps
// them until finalize (FLARE_AGGREGATOR_KEEPS_UPDATES): the global model's
// layout, and for each accepted update its header and views of its tensors in
// the model's order. Views, not copies: the host keeps the bytes in spill
// files and the aggregator reads them block by block at finalize.
#pragma once

#include <flare/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace flare::agg {

struct TensorLayout {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  size_t count = 0;  // elements
  size_t element_bytes = 0;
  bool aggregated = false;  // float32 / float64; otherwise an integer tensor, copied
};

struct KeptUpdate {
  std::string where;  // "site 'x'", for messages
  double num_samples = 0;
  int64_t num_steps = 0;
  std::vector<const std::byte*> data;  // layout index -> the update's bytes
};

class KeptRound {
 public:
  // `aggregator` names the plugin in messages.
  explicit KeptRound(std::string aggregator) : aggregator_(std::move(aggregator)) {}

  void begin(int64_t round, std::span<const flare_named_tensor> model);
  // Checks the update (round, tensors, dtypes, shapes; every value finite, on
  // all cores, unless a 1.4 host checked them) and keeps its views; hands
  // back the pages it read. Throws naming the site and tensor at fault; a
  // refused update is not kept.
  void keep(const flare_site_update& update, const flare::Host& host);
  // Throws unless a round is open with at least one update.
  void check_finalizable() const;
  // The round is over: its views are dropped (the host may unmap them).
  void close();

  int64_t round() const { return round_; }
  const std::string& aggregator() const { return aggregator_; }
  std::span<const TensorLayout> tensors() const { return tensors_; }
  std::span<const KeptUpdate> updates() const { return updates_; }
  // Layout index -> elements to aggregate (0 for integer tensors), for
  // flare::agg::for_each_chunk_of.
  std::span<const size_t> aggregated_sizes() const { return aggregated_sizes_; }

 private:
  std::vector<const std::byte*> matched(const std::string& where,
                                        const flare_site_update& update) const;

  std::string aggregator_;
  std::vector<TensorLayout> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<size_t> aggregated_sizes_;
  std::vector<KeptUpdate> updates_;
  int64_t round_ = 0;
  bool open_ = false;
};

// The next global model: one buffer per tensor of the layout, and the views
// finalize returns (valid while this lives and is not resized).
class ResultModel {
 public:
  void resize(std::span<const TensorLayout> layout);
  std::byte* data(size_t tensor) { return values_[tensor].data(); }
  std::vector<flare_named_tensor> views(std::span<const TensorLayout> layout);

 private:
  std::vector<std::vector<std::byte>> values_;
};

// Copies every integer tensor of `update` into the result and hands back
// its pages.
void copy_integer_tensors(const KeptRound& round, const KeptUpdate& update, ResultModel& result,
                          const flare::Host& host);

// Copies every tensor of `update` into the result (float ones on all cores)
// and hands back its pages.
void copy_update(const KeptRound& round, const KeptUpdate& update, ResultModel& result,
                 const flare::Host& host);

// "site 'a', site 'c'": the listed updates, for messages.
std::string sites_of(const KeptRound& round, std::span<const size_t> which);

// Hands back the pages of elements [a, b) of tensor `tensor` of every listed
// update (all of them when `which` is empty).
void release_elements(const KeptRound& round, size_t tensor, size_t a, size_t b,
                      const flare::Host& host, std::span<const size_t> which = {});

}  // namespace flare::agg
