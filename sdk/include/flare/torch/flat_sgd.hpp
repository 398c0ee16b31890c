// SGD over one flat buffer. Header-only; part of the C++ SDK.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>

namespace flare::torch_sdk {

// torch::optim::SGD (same options, same update, same numbers) that, once given
// the flat buffers its parameters and gradients are views into (the
// LightningTrainer does this when configure_optimizer returns a FlatSGD),
// updates all parameters with a few whole-buffer operations instead of a few
// per parameter: at batch size 4 the per-operation overhead is what costs.
// Without flat buffers, or with several parameter groups, it is plain SGD.
class FlatSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;

  // `parameters` / `gradients`: 1-d tensors whose elements are exactly those
  // of this optimizer's parameters / their .grad, at the same positions in
  // both. Returns false (and stays per-parameter) when the parameters do not
  // all lie in `parameters`.
  bool use_flat_buffers(torch::Tensor parameters, torch::Tensor gradients) {
    if (param_groups().size() != 1 || parameters.dim() != 1 ||
        gradients.sizes() != parameters.sizes())
      return false;
    const auto* begin = static_cast<const char*>(parameters.data_ptr());
    const auto* end = begin + parameters.numel() * parameters.element_size();
    int64_t covered = 0;
    for (const torch::Tensor& p : param_groups()[0].params()) {
      const auto* data = static_cast<const char*>(p.data_ptr());
      if (!p.is_contiguous() || p.scalar_type() != parameters.scalar_type() || data < begin ||
          data + p.numel() * p.element_size() > end)
        return false;
      covered += p.numel();
    }
    if (covered != parameters.numel()) return false;
    parameters_ = std::move(parameters);
    gradients_ = std::move(gradients);
    return true;
  }

  torch::Tensor step(LossClosure closure = nullptr) override {
    if (!parameters_.defined()) return torch::optim::SGD::step(std::move(closure));
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) {
      at::AutoGradMode enable_grad(true);
      loss = closure();
    }
    const auto& o = static_cast<const torch::optim::SGDOptions&>(param_groups()[0].options());
    // The update of torch::optim::SGD::step, on the whole buffer at once.
    torch::Tensor d_p = gradients_;
    if (o.weight_decay() != 0) d_p = d_p.add(parameters_, o.weight_decay());
    if (o.momentum() != 0) {
      if (!momentum_.defined()) {
        momentum_ = torch::clone(d_p).detach();
      } else {
        momentum_.mul_(o.momentum()).add_(d_p, 1 - o.dampening());
      }
      d_p = o.nesterov() ? d_p.add(momentum_, o.momentum()) : momentum_;
    }
    parameters_.add_(d_p, -1 * o.lr());
    return loss;
  }

 private:
  torch::Tensor parameters_;
  torch::Tensor gradients_;
  torch::Tensor momentum_;
};

}  // namespace flare::torch_sdk
