// DistributedDataParallel for a trainer that owns no process group: what
// torch.nn.parallel.DistributedDataParallel does, over the host's collectives.
// Header-only; part of the C++ SDK.
//
// The trainable parameters are moved into one flat buffer (each parameter a
// view into it), and their gradients into another, laid out in REVERSE
// parameter order: autograd produces gradients roughly from the last layer to
// the first, so the buffer fills from its start. It is cut into buckets of
// about bucket_cap_mb; a hook on each parameter's gradient accumulator (run
// after autograd has added that parameter's gradient into its slot) launches a
// bucket's asynchronous all-reduce as soon as all its gradients are in, while
// backward goes on with the earlier layers. Buckets are launched strictly in
// order, so every rank issues the same reductions in the same order.
#pragma once

#include <flare/plugin.hpp>
#include <flare/torch/distributed.hpp>
#include <flare/torch/tensor_views.hpp>

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace flare::torch_sdk {

class DataParallel {
 public:
  // `parameters`: the trainable ones, in the same order on every rank, all of
  // one floating dtype and on one device. They become views into one buffer
  // (their values are kept). The object must outlive every backward pass over
  // them; it is pinned in memory because the hooks point at it.
  DataParallel(std::vector<torch::Tensor> parameters, const Host& host, int world_size,
               double bucket_cap_mb = 25.0)
      : parameters_(std::move(parameters)), host_(host), world_size_(world_size) {
    if (parameters_.empty()) return;
    const torch::Tensor& first = parameters_.front();
    for (const torch::Tensor& p : parameters_) {
      if (p.scalar_type() != first.scalar_type() || p.device() != first.device())
        throw Error(FLARE_ERROR_UNSUPPORTED,
                    "data parallelism needs all trainable parameters of one dtype and device");
      numel_ += p.numel();
    }
    const auto options = first.options().requires_grad(false);
    flat_parameters_ = torch::empty({numel_}, options);
    // One extra element after the gradients: the stop flag (see begin_micro_batch).
    gradient_buffer_ = torch::zeros({numel_ + 1}, options);
    flat_gradients_ = gradient_buffer_.narrow(0, 0, numel_);
    const auto cap_bytes = static_cast<int64_t>(bucket_cap_mb * 1024 * 1024);
    const int64_t element = static_cast<int64_t>(first.element_size());
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (auto i = static_cast<int64_t>(parameters_.size()) - 1; i >= 0; --i) {
      torch::Tensor& p = parameters_[static_cast<std::size_t>(i)];
      const int64_t n = p.numel();
      torch::Tensor slot = flat_parameters_.narrow(0, offset, n).view(p.sizes());
      slot.copy_(p);
      p.set_data(slot);
      slots_.push_back({static_cast<std::size_t>(i), offset, n});
      if (buckets_.empty() || buckets_.back().bytes >= cap_bytes) buckets_.push_back({offset});
      Bucket& bucket = buckets_.back();
      bucket.numel += n;
      bucket.bytes += n * element;
      ++bucket.size;
      bucket_of_.push_back(buckets_.size() - 1);  // indexed like slots_
      offset += n;
    }
    buckets_.back().numel += 1;  // the last bucket carries the stop flag
    gradient_views_.resize(parameters_.size());
    slot_of_.resize(parameters_.size());
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      const Slot& slot = slots_[s];
      gradient_views_[slot.parameter] =
          flat_gradients_.narrow(0, slot.offset, slot.numel).view(parameters_[slot.parameter].sizes());
      slot_of_[slot.parameter] = s;
    }
    attach_gradients();
    if (world_size_ > 1) add_hooks();
  }

  ~DataParallel() { remove_hooks(); }
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // All trainable parameters / their gradients, as one tensor each (views of
  // the same memory the parameters and their .grad use).
  const torch::Tensor& flat_parameters() const { return flat_parameters_; }
  const torch::Tensor& flat_gradients() const { return flat_gradients_; }
  std::size_t num_buckets() const { return buckets_.size(); }

  // Collective. Every rank takes rank 0's parameters (one broadcast, in
  // place) and buffers (one more, packed), so ranks start identical however
  // each initialised its model.
  void broadcast_from_rank0(const std::vector<torch::Tensor>& buffers) {
    if (world_size_ <= 1) return;
    torch::NoGradGuard no_grad;
    if (flat_parameters_.defined()) broadcast(host_, flat_parameters_, 0);
    broadcast_packed(host_, buffers, 0);
  }

  // Before a micro-batch's forward. `first`: the first of an optimizer step's
  // micro-batches (the gradients are zeroed; autograd then adds every
  // micro-batch's into them). `sync`: the last one: its backward reduces the
  // summed gradients across the group; the others communicate nothing (DDP's
  // no_sync). `stop`: this rank's wish to stop, sent with the last bucket.
  void begin_micro_batch(bool first, bool sync, bool stop = false) {
    if (!flat_parameters_.defined()) {
      stop_ = stop;
      return;
    }
    if (first) {
      attach_gradients();
      gradient_buffer_.zero_();
    }
    sync_ = sync && world_size_ > 1;
    stop_ = stop;
    if (!sync_) return;
    if (stop) gradient_buffer_.narrow(0, numel_, 1).fill_(1.0);
    for (Bucket& b : buckets_) b.pending = b.size;
    seen_.assign(slots_.size(), false);
    next_launch_ = 0;
  }

  // Collective, after backward of a `sync` micro-batch (a no-op otherwise).
  // Launches the buckets still waiting (their parameters had no gradient this
  // step: their slots hold zeros), waits for all, and averages; .grad then
  // holds the group's mean gradient. Returns true when any rank asked to stop
  // (only read when `read_stop`, which must be the same on every rank: on a
  // GPU it costs a synchronisation).
  bool finish_step(bool read_stop = true) {
    if (!sync_) return stop_;
    sync_ = false;
    launch_ready(/*all=*/true);
    std::exception_ptr failure;
    for (Bucket& b : buckets_) {
      try {
        b.reduction.wait();
      } catch (...) {
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    gradient_buffer_.div_(static_cast<double>(world_size_));
    if (!read_stop) return false;
    return gradient_buffer_.narrow(0, numel_, 1).item<double>() > 0.0;
  }

 private:
  struct Slot {
    std::size_t parameter;
    int64_t offset;
    int64_t numel;
  };
  struct Bucket {
    int64_t offset = 0;
    int64_t numel = 0;
    int64_t bytes = 0;
    int size = 0;  // parameters in it
    int pending = 0;
    int64_t shape = 0;  // the DLTensor view's shape
    Host::Reduction reduction;
  };

  // .grad of every parameter is its view into the gradient buffer (again, if
  // something replaced it, e.g. a set_to_none zero_grad).
  void attach_gradients() {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      const torch::Tensor& g = parameters_[i].grad();
      if (!g.defined() || !g.is_same(gradient_views_[i]))
        parameters_[i].mutable_grad() = gradient_views_[i];
    }
  }

  void add_hooks() {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      auto accumulator = torch::autograd::impl::grad_accumulator(parameters_[i]);
      const auto key = accumulator->add_post_hook(
          std::make_unique<torch::autograd::utils::LambdaPostHook>(
              [this, i](const torch::autograd::variable_list& outputs,
                        const torch::autograd::variable_list&) {
                on_gradient(i);
                return outputs;
              }));
      // Kept alive here: a parameter only holds its accumulator weakly.
      hooks_.push_back({std::move(accumulator), key});
    }
  }

  void remove_hooks() noexcept {
    for (auto& hook : hooks_) hook.accumulator->del_post_hook(hook.key);
    hooks_.clear();
  }

  // Autograd has added parameter i's gradient of this backward into its slot.
  void on_gradient(std::size_t i) {
    if (!sync_) return;
    const std::size_t s = slot_of_[i];
    if (seen_[s]) return;
    seen_[s] = true;
    if (--buckets_[bucket_of_[s]].pending == 0) launch_ready(/*all=*/false);
  }

  // Launches, in order, the buckets from the next unlaunched one on that are
  // complete (all of them when `all`).
  void launch_ready(bool all) {
    while (next_launch_ < buckets_.size() && (all || buckets_[next_launch_].pending == 0)) {
      Bucket& b = buckets_[next_launch_++];
      torch::Tensor part = gradient_buffer_.narrow(0, b.offset, b.numel);
      b.shape = b.numel;
      DLTensor view = to_dl_view(part, &b.shape);
      b.reduction = host_.all_reduce_start(view, FLARE_REDUCE_SUM);
    }
  }

  struct Hook {
    std::shared_ptr<torch::autograd::Node> accumulator;
    uintptr_t key;
  };

  std::vector<torch::Tensor> parameters_;
  Host host_;
  int world_size_;
  int64_t numel_ = 0;
  torch::Tensor flat_parameters_;
  torch::Tensor gradient_buffer_;  // gradients, then the stop flag
  torch::Tensor flat_gradients_;
  std::vector<torch::Tensor> gradient_views_;  // by parameter
  std::vector<Slot> slots_;                    // in buffer order (reverse parameters)
  std::vector<std::size_t> slot_of_;           // by parameter
  std::vector<std::size_t> bucket_of_;         // by slot
  std::vector<Bucket> buckets_;
  std::vector<Hook> hooks_;
  std::vector<bool> seen_;
  std::size_t next_launch_ = 0;
  bool sync_ = false;
  bool stop_ = false;
};

}  // namespace flare::torch_sdk
