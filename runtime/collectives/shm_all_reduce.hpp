// CPU all-reduce through shared memory, for the ranks of a group that share a
// host (the way NCCL's SHM transport or DeepSpeed's CPU shm backend do it;
// Gloo only has sockets).
//
// Each rank copies its tensor into its slot of one shared segment and flags
// it; rank r then reduces the r-th chunk of every slot, in rank order, into a
// result area; each rank copies the whole result back. Waiting is spinning on
// the other ranks' counters (yielding the core after a while), so no syscall
// and no wake-up sits between two ranks: on a 2-vCPU VM a socket wake-up costs
// more than reducing LitNet's 248 KB.
//
// The result is computed once per chunk and copied by every rank, so all
// ranks hold the same bits.
#pragma once

#include <flare/plugin_abi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace gloo::rendezvous {
class Store;
}

namespace flare::collectives {

class ShmAllReduce {
 public:
  // The most ranks one segment serves.
  static constexpr int kMaxRanks = 64;

  // Sets the segment up with the other ranks through store (keys under
  // "flare_shm/"). Every rank gets the same outcome: a working all-reduce on
  // all of them, or nullptr on all of them with the reason in *why_not (no
  // shared memory, too small a /dev/shm, too many ranks). timeout bounds the
  // setup and each wait of every all-reduce.
  static std::unique_ptr<ShmAllReduce> connect(::gloo::rendezvous::Store& store, int rank,
                                               int world_size, std::chrono::milliseconds timeout,
                                               std::string* why_not);
  ~ShmAllReduce();
  ShmAllReduce(const ShmAllReduce&) = delete;
  ShmAllReduce& operator=(const ShmAllReduce&) = delete;

  // A dense, row-major CPU tensor of float32/64 or int32/64, of any size.
  static bool supports(const DLTensor& tensor);
  // In place; every rank calls it with the same element count and dtype, in
  // the same order. Throws std::runtime_error when a peer does not arrive in
  // time or has exited.
  void all_reduce(DLTensor& tensor, flare_reduce_op op);

  std::size_t slot_bytes() const { return slot_bytes_; }

 private:
  struct Header;
  static std::size_t header_bytes();
  ShmAllReduce(int rank, int world_size, std::chrono::milliseconds timeout, void* base,
               std::size_t bytes, std::size_t slot_bytes);

  void reduce_piece(char* data, std::size_t bytes, const DLDataType& dtype, flare_reduce_op op);
  // Spins until every rank's counter (arrived or reduced) reaches call.
  void wait_for_all(bool reduced, std::uint64_t call);
  char* slot(int rank) const;
  char* result(std::uint64_t call) const;

  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  void* base_;
  std::size_t bytes_;
  std::size_t slot_bytes_;
  Header* header_;
  std::uint64_t calls_ = 0;
  std::mutex mutex_;  // one all-reduce at a time keeps the call order the same on every rank
};

}  // namespace flare::collectives
