#include "collectives/gloo_mesh.hpp"

#include "collectives/cpu_tensor.hpp"

#include <gloo/allreduce_halving_doubling.h>
#include <gloo/rendezvous/context.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace flare::collectives {

namespace {

template <class T>
const ::gloo::ReductionFunction<T>* reduction(flare_reduce_op op) {
  switch (op) {
    case FLARE_REDUCE_SUM:
      return ::gloo::ReductionFunction<T>::sum;
    case FLARE_REDUCE_MAX:
      return ::gloo::ReductionFunction<T>::max;
    case FLARE_REDUCE_MIN:
      return ::gloo::ReductionFunction<T>::min;
  }
  throw std::runtime_error("unknown reduce op " + std::to_string(static_cast<int>(op)));
}

template <class T>
void halving_doubling(const std::shared_ptr<::gloo::Context>& context, void* data, int64_t count,
                      flare_reduce_op op) {
  // Built per call: it holds the pointer and takes fresh slots, which every
  // rank allocates in the same order.
  ::gloo::AllreduceHalvingDoubling<T> algorithm(context, {static_cast<T*>(data)},
                                                static_cast<int>(count), reduction<T>(op));
  algorithm.run();
}

}  // namespace

GlooMesh::GlooMesh(::gloo::rendezvous::Store& store,
                   const std::shared_ptr<::gloo::transport::Device>& device, int rank,
                   int world_size, std::chrono::milliseconds timeout, std::size_t sync_bytes)
    : sync_bytes_(sync_bytes) {
  auto context = std::make_shared<::gloo::rendezvous::Context>(rank, world_size);
  // Set before connecting: the pairs take it as their socket timeout.
  context->setTimeout(timeout);
  auto connect_device = device;
#if FLARE_DIRECT_GLOO
  context->connectFullMesh(store, connect_device);
#else
  throw std::logic_error("the direct Gloo mesh is not built with a LibTorch that has Gloo "
                         "inside it (its Gloo headers may not match)");
#endif
  for (int peer = 0; peer < world_size; ++peer)
    if (peer != rank) context->getPair(peer)->setSync(/*sync=*/true, /*busyPoll=*/false);
  context_ = std::move(context);
}

GlooMesh::~GlooMesh() = default;

bool GlooMesh::supports(const DLTensor& t) {
  return reducible_on_cpu(t) &&
         flare::num_elements(t) * (t.dtype.bits / 8) <= static_cast<int64_t>(kMaxBytes);
}

void GlooMesh::all_reduce(DLTensor& t, flare_reduce_op op) {
  const int64_t count = flare::num_elements(t);
  if (count == 0) return;
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  const std::size_t element_bytes = t.dtype.bits / 8;
  const auto reduce = [&](void* from, int64_t n) {
    if (t.dtype.code == kDLFloat)
      element_bytes == 4 ? halving_doubling<float>(context_, from, n, op)
                         : halving_doubling<double>(context_, from, n, op);
    else
      element_bytes == 4 ? halving_doubling<int32_t>(context_, from, n, op)
                         : halving_doubling<int64_t>(context_, from, n, op);
  };
  const int64_t piece = static_cast<int64_t>(sync_bytes_ / element_bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  for (int64_t at = 0; at < count; at += piece)
    reduce(static_cast<char*>(data) + at * element_bytes, std::min(piece, count - at));
}

}  // namespace flare::collectives
