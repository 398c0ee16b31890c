// Norm-bounded FedAvg: each site's change to the global model (its delta) is
// scaled down to at most `max_norm` (L2 over all tensors) before the deltas
// are averaged, weighted by the sites' samples. One site with a huge or
// poisoned update then moves the model by at most max_norm * its weight
// (Sun et al. 2019, "Can you really backdoor federated learning?").
//
// Config: {"max_norm": > 0 (required), "weight": "num_samples" (default) | "uniform"}.
// Float32 models only. Reports "clipped_sites" and "max_update_norm" each round.
#include <flare/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace {

class ClippedFedAvg final : public flare::Aggregator {
 public:
  // Every option's type and range: the host checks a job's config against
  // this before the job starts, and create() again.
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema()
        .number("max_norm", {0, /*inclusive=*/false})
        .choice("weight", {"num_samples", "uniform"});
  }
  // What the schema cannot say: max_norm has no sensible default.
  static void validate_config(const nlohmann::json& config, flare::Host) {
    if (!config.contains("max_norm"))
      throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT,
                         "clipped_fedavg: option 'max_norm' is required (a number > 0)");
  }

  ClippedFedAvg(const nlohmann::json& config, flare::Host host)
      : host_(host),
        max_norm_(config.at("max_norm").get<double>()),
        uniform_(config.value("weight", "num_samples") == "uniform") {}

  // Copies the global model: the deltas are taken against it.
  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    round_ = round;
    tensors_.clear();
    for (const flare_named_tensor& t : model) {
      if (t.tensor.dtype.code != kDLFloat || t.tensor.dtype.bits != 32 || !flare::is_row_major(t.tensor))
        throw flare::Error(FLARE_ERROR_UNSUPPORTED, std::string("clipped_fedavg: tensor '") +
                                                        t.name + "' is not dense float32");
      const auto* data = static_cast<const float*>(t.tensor.data);
      Tensor& mine = tensors_.emplace_back();
      mine.name = t.name;
      mine.shape.assign(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
      mine.global.assign(data, data + flare::num_elements(t.tensor));
      mine.delta_sum.assign(mine.global.size(), 0.0);
    }
    total_weight_ = 0;
    clipped_sites_ = 0;
    max_update_norm_ = 0;
  }

  // The update is borrowed for this call only: what is kept is folded into
  // delta_sum now.
  void accept(const flare_site_update& update) override {
    const double weight = uniform_ ? 1.0 : update.num_samples;
    if (!(weight > 0))
      throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT,
                         "clipped_fedavg: site " + std::string(update.site) + " did no work");
    const std::vector<const float*> site = match(update);
    double squared = 0;
    for (size_t t = 0; t < tensors_.size(); ++t)
      for (size_t i = 0; i < tensors_[t].global.size(); ++i) {
        const double d = double{site[t][i]} - tensors_[t].global[i];
        squared += d * d;
      }
    const double norm = std::sqrt(squared);
    const double scale = norm > max_norm_ ? max_norm_ / norm : 1.0;
    if (scale < 1.0) ++clipped_sites_;
    max_update_norm_ = std::max(max_update_norm_, norm);
    for (size_t t = 0; t < tensors_.size(); ++t)
      for (size_t i = 0; i < tensors_[t].global.size(); ++i)
        tensors_[t].delta_sum[i] += weight * scale * (double{site[t][i]} - tensors_[t].global[i]);
    total_weight_ += weight;
  }

  // The next model: global + the weighted mean of the clipped deltas. The views
  // point into this aggregator and stay valid until the next begin_round.
  std::vector<flare_named_tensor> finalize() override {
    if (total_weight_ == 0)
      throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT, "clipped_fedavg: no update this round");
    std::vector<flare_named_tensor> views;
    for (Tensor& t : tensors_) {
      t.result.resize(t.global.size());
      for (size_t i = 0; i < t.global.size(); ++i)
        t.result[i] = static_cast<float>(t.global[i] + t.delta_sum[i] / total_weight_);
      views.push_back(flare::tensor_view(t.name.c_str(), t.result.data(), {kDLFloat, 32, 1},
                                         t.shape.data(), static_cast<int32_t>(t.shape.size())));
    }
    host_.metric("clipped_sites", clipped_sites_, round_);
    host_.metric("max_update_norm", max_update_norm_, round_);
    return views;
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> global;
    std::vector<double> delta_sum;
    std::vector<float> result;
  };

  // The update's data for each global tensor, found by name and checked.
  std::vector<const float*> match(const flare_site_update& update) const {
    std::vector<const float*> data;
    for (const Tensor& mine : tensors_) {
      const flare_named_tensor* found = nullptr;
      for (size_t i = 0; i < update.num_weights && !found; ++i)
        if (mine.name == update.weights[i].name) found = &update.weights[i];
      if (!found || found->tensor.dtype.code != kDLFloat || found->tensor.dtype.bits != 32 ||
          !flare::is_row_major(found->tensor) ||
          static_cast<size_t>(flare::num_elements(found->tensor)) != mine.global.size())
        throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT,
                           "clipped_fedavg: site " + std::string(update.site) +
                               " sent no dense float32 '" + mine.name + "' of the model's size");
      data.push_back(static_cast<const float*>(found->tensor.data));
    }
    return data;
  }

  flare::Host host_;
  double max_norm_;
  bool uniform_;
  int64_t round_ = 0;
  std::vector<Tensor> tensors_;
  double total_weight_ = 0;
  int clipped_sites_ = 0;
  double max_update_norm_ = 0;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(ClippedFedAvg, "clipped_fedavg", "1.0.0",
                        "FedAvg of site deltas each clipped to an L2 norm of max_norm")
