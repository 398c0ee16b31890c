#include "worker/process_group_collectives.hpp"

#include <ATen/DLConvertor.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <stdexcept>
#include <vector>

namespace flare::worker {

namespace {

c10::Device to_torch_device(const DLDevice& device) {
  switch (device.device_type) {
    case kDLCPU:
      return c10::Device(c10::kCPU);
    case kDLCUDA:
      return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device.device_id));
    default:
      throw std::runtime_error("unsupported DLPack device type " +
                               std::to_string(static_cast<int>(device.device_type)));
  }
}

// The DLTensor's memory as an at::Tensor (no copy; the DLTensor keeps ownership).
at::Tensor wrap(const DLTensor& t) {
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  auto options =
      at::TensorOptions().dtype(at::toScalarType(t.dtype)).device(to_torch_device(t.device));
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  if (t.strides) {
    std::vector<int64_t> strides(t.strides, t.strides + t.ndim);
    return torch::from_blob(data, shape, strides, options);
  }
  return torch::from_blob(data, shape, options);
}

c10d::ReduceOp to_reduce_op(flare_reduce_op op) {
  switch (op) {
    case FLARE_REDUCE_SUM:
      return c10d::ReduceOp::SUM;
    case FLARE_REDUCE_MAX:
      return c10d::ReduceOp::MAX;
    case FLARE_REDUCE_MIN:
      return c10d::ReduceOp::MIN;
  }
  throw std::runtime_error("unknown reduce op " + std::to_string(static_cast<int>(op)));
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const ProcessGroupOptions& options) {
  if (!options.bind_addr.empty())
    return c10d::ProcessGroupGloo::createDeviceForHostname(options.bind_addr);
  const bool loopback = options.master_addr == "localhost" ||
                        options.master_addr.rfind("127.", 0) == 0 || options.master_addr == "::1";
  if (loopback) return c10d::ProcessGroupGloo::createDeviceForHostname(options.master_addr);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

struct ProcessGroupCollectives::Group {
  ProcessGroupOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;

  // Runs one collective to completion; any failure becomes one message that
  // says what failed where.
  template <class Start>
  void run(const char* operation, Start&& start) {
    try {
      auto work = start();
      work->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(operation) + " failed on rank " +
                               std::to_string(options.rank) + " of " +
                               std::to_string(options.world_size) + ": " + e.what());
    }
  }
};

ProcessGroupCollectives::ProcessGroupCollectives(const ProcessGroupOptions& options)
    : group_(std::make_unique<Group>()) {
  group_->options = options;
  const std::string where = " (rank " + std::to_string(options.rank) + " of " +
                            std::to_string(options.world_size) + ", store " +
                            options.master_addr + ":" + std::to_string(options.master_port) + ")";
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size)
    throw std::runtime_error("invalid worker group rank/size" + where);
  if (options.master_port <= 0 || options.master_port > 65535)
    throw std::runtime_error("invalid master port" + where);
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(options.master_port);
    store_options.isServer = options.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(options.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = options.timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);

    auto pg_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
    pg_options->devices.push_back(gloo_device(options));
    // Gloo runs one collective at a time per group; more threads buy nothing.
    pg_options->threads = 1;
    group_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, options.rank,
                                                             options.world_size, pg_options);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot form the worker group" + where + ": " + e.what());
  }
}

ProcessGroupCollectives::~ProcessGroupCollectives() = default;

int ProcessGroupCollectives::rank() const { return group_->options.rank; }
int ProcessGroupCollectives::world_size() const { return group_->options.world_size; }

void ProcessGroupCollectives::all_reduce(DLTensor& tensor, flare_reduce_op op) {
  group_->run("all_reduce", [&] {
    std::vector<at::Tensor> tensors{wrap(tensor)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = to_reduce_op(op);
    return group_->pg->allreduce(tensors, opts);
  });
}

void ProcessGroupCollectives::broadcast(DLTensor& tensor, int root_rank) {
  group_->run("broadcast", [&] {
    if (root_rank < 0 || root_rank >= group_->options.world_size)
      throw std::runtime_error("root rank " + std::to_string(root_rank) + " is not in the group");
    std::vector<at::Tensor> tensors{wrap(tensor)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root_rank;
    return group_->pg->broadcast(tensors, opts);
  });
}

void ProcessGroupCollectives::barrier() {
  group_->run("barrier", [&] { return group_->pg->barrier(); });
}

}  // namespace flare::worker
