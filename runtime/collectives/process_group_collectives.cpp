#include "collectives/process_group_collectives.hpp"

#include "collectives/gloo_mesh.hpp"
#include "collectives/shm_all_reduce.hpp"
#include "collectives/store_rendezvous.hpp"

#include <flare/torch/tensor_views.hpp>
#include <gloo/rendezvous/prefix_store.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/torch.h>

#if FLARE_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <stdexcept>
#include <vector>

namespace flare::collectives {

namespace {

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

bool is_loopback(const std::string& address) {
  return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

// Whether every rank runs on this host.
bool one_host(const ProcessGroupOptions& options) {
  if (options.ranks_per_node > 0) return options.ranks_per_node == options.world_size;
  return is_loopback(options.bind_addr.empty() ? options.master_addr : options.bind_addr);
}

// Whether the ranks talk over loopback (one host).
bool on_loopback(const ProcessGroupOptions& options) {
  return is_loopback(options.bind_addr.empty() ? options.master_addr : options.bind_addr);
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const ProcessGroupOptions& options) {
  if (!options.bind_addr.empty())
    return c10d::ProcessGroupGloo::createDeviceForHostname(options.bind_addr);
  if (is_loopback(options.master_addr))
    return c10d::ProcessGroupGloo::createDeviceForHostname(options.master_addr);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// "all_reduce failed on rank 1 of 2: <why>".
std::runtime_error failure(const std::string& operation, int rank, int world_size,
                           const std::exception& e) {
  return std::runtime_error(operation + " failed on rank " + std::to_string(rank) + " of " +
                            std::to_string(world_size) + ": " + e.what());
}

}  // namespace

struct ProcessGroupCollectives::Group {
  ProcessGroupOptions options;
  c10::intrusive_ptr<c10d::Store> store;
  // Exactly one is set. Held by their own types: newer LibTorch versions put
  // backends under c10d::Backend rather than c10d::ProcessGroup.
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  // With gloo, where CPU all-reduces run: shared memory when every rank is on
  // this host (shm_all_reduce.hpp), else the direct mesh (gloo_mesh.hpp). The
  // process group keeps broadcast, barrier and the tensors they do not take.
  std::unique_ptr<ShmAllReduce> shm;
  std::unique_ptr<GlooMesh> mesh;
  std::string cpu_path = "process group";
  // The last all-reduce handed to the process group. A mesh all-reduce waits
  // for it first, so works still complete in the order started.
  c10::intrusive_ptr<c10d::Work> last_group_reduce;
#if FLARE_WITH_CUDA
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  // Calls start(backend) with whichever backend this group runs on.
  template <class Start>
  c10::intrusive_ptr<c10d::Work> on_backend(Start&& start) {
#if FLARE_WITH_CUDA
    if (nccl) return start(*nccl);
#endif
    return start(*gloo);
  }

  // Runs one collective to completion; any failure becomes one message that
  // says what failed where.
  template <class Start>
  void run(const char* operation, Start&& start) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      throw failure(operation, options.rank, options.world_size, e);
    }
  }

  // Runs start({tensor}) to completion on a tensor the backend takes: NCCL
  // takes CUDA tensors only, so there a CPU tensor goes to this rank's GPU and
  // its result back.
  template <class Start>
  void run_on_backend_device(const char* operation, const at::Tensor& tensor, Start&& start) {
    run(operation, [&] {
      bool staged = false;
#if FLARE_WITH_CUDA
      staged = nccl && !tensor.is_cuda();
#endif
      std::vector<at::Tensor> tensors{
          staged ? tensor.to(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(options.cuda_device)))
                 : tensor};
      auto work = start(tensors);
      if (staged) {
        work->wait();
        tensor.copy_(tensors[0]);
      }
      return work;
    });
  }

  // Whether the shared-memory or mesh path takes this tensor.
  bool direct(const DLTensor& tensor) const {
    return shm ? ShmAllReduce::supports(tensor) : mesh && GlooMesh::supports(tensor);
  }

  void direct_all_reduce(DLTensor& tensor, flare_reduce_op op) {
    try {
      if (auto earlier = std::move(last_group_reduce)) earlier->wait();
      shm ? shm->all_reduce(tensor, op) : mesh->all_reduce(tensor, op);
    } catch (const std::exception& e) {
      throw failure("all_reduce", options.rank, options.world_size, e);
    }
  }

  c10::intrusive_ptr<c10d::Work> group_all_reduce(std::vector<at::Tensor>& tensors,
                                                  flare_reduce_op op) {
    c10d::AllreduceOptions opts;
    opts.reduceOp = to_reduce_op(op);
    auto work = on_backend([&](auto& pg) { return pg.allreduce(tensors, opts); });
    if (shm || mesh) last_group_reduce = work;
    return work;
  }
};

namespace {

// A c10d work in flight. The wrapped tensors alias the caller's memory, which
// the caller keeps alive until wait() (or this destructor, which waits).
class GroupWork final : public flare::host::Collectives::Work {
 public:
  GroupWork(c10::intrusive_ptr<c10d::Work> work, std::vector<at::Tensor> tensors, int rank,
            int world_size)
      : work_(std::move(work)), tensors_(std::move(tensors)), rank_(rank), world_size_(world_size) {}
  ~GroupWork() override {
    try {
      if (work_) work_->wait();
    } catch (...) {
      // Already failed: the caller learns it from the collective after this one.
    }
  }
  void wait() override {
    auto work = std::move(work_);
    if (!work) return;
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw failure("all_reduce", rank_, world_size_, e);
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::vector<at::Tensor> tensors_;
  int rank_;
  int world_size_;
};

// A shared-memory or mesh all-reduce: done by the time it is returned.
class DoneWork final : public flare::host::Collectives::Work {
 public:
  void wait() override {}
};

}  // namespace

ProcessGroupCollectives::ProcessGroupCollectives(const ProcessGroupOptions& options)
    : group_(std::make_unique<Group>()) {
  group_->options = options;
  const std::string place = " (rank " + std::to_string(options.rank) + " of " +
                            std::to_string(options.world_size) + ", store " +
                            options.master_addr + ":" + std::to_string(options.master_port) + ")";
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size)
    throw std::runtime_error("invalid worker group rank/size" + place);
  if (options.master_port <= 0 || options.master_port > 65535)
    throw std::runtime_error("invalid master port" + place);
  if (options.backend != "gloo" && options.backend != "nccl")
    throw std::runtime_error("unknown collectives backend '" + options.backend +
                             "' (known: gloo, nccl)" + place);
#if !FLARE_WITH_CUDA
  if (options.backend == "nccl")
    throw std::runtime_error(
        "backend 'nccl' needs CUDA, but this build has no CUDA LibTorch (it was configured "
        "with a CPU-only LibTorch); use backend 'gloo' or rebuild against a CUDA LibTorch" +
        place);
#endif
  // Outside the try below: a RendezvousError already says who and where.
  group_->store = join_rendezvous(options);
  try {
    if (options.backend == "nccl") {
#if FLARE_WITH_CUDA
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options.timeout;
      group_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          group_->store, options.rank, options.world_size, nccl_options);
#endif
    } else {
      auto device = gloo_device(options);
      auto pg_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
      pg_options->devices.push_back(device);
      // Gloo runs one collective at a time per group; more threads buy nothing.
      pg_options->threads = 1;
      group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, options.rank,
                                                                 options.world_size, pg_options);
#if FLARE_DIRECT_GLOO
      c10d::ProcessGroupGloo::GlooStore gloo_store(group_->store);
      std::string no_shm = "ranks on several hosts";
      if (options.world_size > 1 && options.shared_memory && one_host(options)) {
        ::gloo::rendezvous::PrefixStore shm_store("flare_shm", gloo_store);
        group_->shm = ShmAllReduce::connect(shm_store, options.rank, options.world_size,
                                            options.timeout, &no_shm);
        if (group_->shm) group_->cpu_path = "shared memory";
      }
      if (options.world_size > 1 && !group_->shm) {
        ::gloo::rendezvous::PrefixStore mesh_store("flare_gloo_mesh", gloo_store);
        group_->cpu_path = options.shared_memory ? "gloo mesh (no shared memory: " + no_shm + ")"
                                                 : "gloo mesh";
        group_->mesh = std::make_unique<GlooMesh>(mesh_store, device, options.rank,
                                                  options.world_size, options.timeout,
                                                  on_loopback(options)
                                                      ? GlooMesh::kLoopbackSyncBytes
                                                      : GlooMesh::kNetworkSyncBytes);
      }
#endif
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot form the worker group" + place + ": " + e.what());
  }
}

ProcessGroupCollectives::~ProcessGroupCollectives() = default;

int ProcessGroupCollectives::rank() const { return group_->options.rank; }
int ProcessGroupCollectives::world_size() const { return group_->options.world_size; }
const std::string& ProcessGroupCollectives::cpu_all_reduce_path() const {
  return group_->cpu_path;
}

void ProcessGroupCollectives::all_reduce(DLTensor& tensor, flare_reduce_op op) {
  if (group_->direct(tensor)) return group_->direct_all_reduce(tensor, op);
  group_->run_on_backend_device("all_reduce", flare::torch_sdk::from_dl_view(tensor),
                                [&](auto& tensors) { return group_->group_all_reduce(tensors, op); });
}

std::unique_ptr<flare::host::Collectives::Work> ProcessGroupCollectives::all_reduce_start(
    DLTensor& tensor, flare_reduce_op op) {
  if (group_->direct(tensor)) {
    // In the calling thread: a communication thread only competes with backward
    // for a few cores (LitNet, 2 ranks on 2 vCPUs: 1.9 ms a step with one,
    // 1.4 ms without).
    group_->direct_all_reduce(tensor, op);
    return std::make_unique<DoneWork>();
  }
  try {
    std::vector<at::Tensor> tensors{flare::torch_sdk::from_dl_view(tensor)};
    auto work = group_->group_all_reduce(tensors, op);
    return std::make_unique<GroupWork>(std::move(work), std::move(tensors), rank(),
                                       world_size());
  } catch (const std::exception& e) {
    throw failure("all_reduce", rank(), world_size(), e);
  }
}

void ProcessGroupCollectives::broadcast(DLTensor& tensor, int root_rank) {
  if (root_rank < 0 || root_rank >= group_->options.world_size)
    throw failure("broadcast", rank(), world_size(),
                  std::runtime_error("root rank " + std::to_string(root_rank) +
                                     " is not in the group"));
  c10d::BroadcastOptions opts;
  opts.rootRank = root_rank;
  group_->run_on_backend_device("broadcast", flare::torch_sdk::from_dl_view(tensor),
                                [&](auto& tensors) {
                                  return group_->on_backend(
                                      [&](auto& pg) { return pg.broadcast(tensors, opts); });
                                });
}

void ProcessGroupCollectives::barrier() {
  group_->run("barrier",
              [&] { return group_->on_backend([](auto& pg) { return pg.barrier(); }); });
}

}  // namespace flare::collectives
