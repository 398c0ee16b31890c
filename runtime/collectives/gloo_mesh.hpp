// CPU all-reduce on the Gloo library itself, in the calling thread.
//
// ProcessGroupGloo hands every collective to its worker thread, and Gloo's
// default ring algorithm with its tcp event loop wakes another thread for
// every segment received: on a few-core machine those wake-ups cost far more
// than the data (2 ranks on loopback, 2 vCPUs: 62k floats took 1.7-1.9 ms
// through ProcessGroupGloo, 0.11-0.19 ms here). This mesh connects its own
// Gloo pairs over the group's store, in sync mode (the caller reads its socket
// itself, no event-loop hop), and runs halving-doubling (2 log2(ranks) steps
// whatever the size) in the calling thread.
//
// In sync mode both ranks of a step write before either reads, so a chunk
// larger than the two socket buffers blocks both writers until the timeout
// (Gloo makes it every pair's SO_SNDTIMEO and SO_RCVTIMEO, so a peer that stops
// reading fails the write instead of hanging it). So one all-reduce here is at
// most sync_bytes, whose largest chunk (half of it, with 2 ranks) fits what a
// fresh Linux TCP connection buffers: a send buffer of 2 x 10 segments (over
// 1 MB on loopback, ~58 KB with a 1500-byte MTU) plus a 64 KB receive window
// (tcp_rmem's default 128 KiB).
// Tensors up to kMaxBytes go in pieces of sync_bytes; larger ones are
// bandwidth-bound and faster through ProcessGroupGloo's pipelined ring
// (25M floats: 63 ms there, 140 ms with halving-doubling).
#pragma once

#include <flare/plugin_abi.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>

namespace gloo {
class Context;
namespace rendezvous {
class Store;
}
namespace transport {
class Device;
}
}  // namespace gloo

namespace flare::collectives {

class GlooMesh {
 public:
  // Blocks until every rank has connected through store (whose keys it
  // shares with nothing else). timeout bounds the connection and each
  // receive of every all-reduce.
  GlooMesh(::gloo::rendezvous::Store& store,
           const std::shared_ptr<::gloo::transport::Device>& device, int rank, int world_size,
           std::chrono::milliseconds timeout, std::size_t sync_bytes);
  ~GlooMesh();
  GlooMesh(const GlooMesh&) = delete;
  GlooMesh& operator=(const GlooMesh&) = delete;

  // Whether all_reduce takes this tensor: a dense CPU tensor of float32/64 or
  // int32/64, of at most kMaxBytes. Others go through the process group.
  static bool supports(const DLTensor& tensor);
  // In place; returns once this rank has the result. Every rank must call it
  // with the same element count and dtype, in the same order. Throws
  // std::runtime_error (Gloo's message) on a failed or timed-out peer.
  void all_reduce(DLTensor& tensor, flare_reduce_op op);

  // sync_bytes for ranks on one host (loopback) and across hosts.
  static constexpr std::size_t kLoopbackSyncBytes = 256 * 1024;
  static constexpr std::size_t kNetworkSyncBytes = 64 * 1024;
  static constexpr std::size_t kMaxBytes = 1024 * 1024;

 private:
  std::size_t sync_bytes_;
  std::shared_ptr<::gloo::Context> context_;
  // An all-reduce takes context slots in call order; one at a time keeps the
  // order the same on every rank even if two threads call.
  std::mutex mutex_;
};

}  // namespace flare::collectives
