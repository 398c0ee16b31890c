// An update's bytes on disk while it streams in: an unlinked temporary file
// (nothing is left behind, whatever happens to the server). It is what lets
// the server fold an update as it arrives and still take it back whole when a
// later chunk turns out bad (the folded chunks are read back and retracted),
// and what an aggregator that takes updates whole reads them from, so in
// neither case does memory grow with the sites. Freshly written pages sit in
// the kernel's page cache, reclaimable; a file closed within seconds is
// usually never written out at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <utility>

namespace flare::server {

class UpdateSpool {
 public:
  // Created on the first append, in `dir`.
  explicit UpdateSpool(std::filesystem::path dir);
  ~UpdateSpool();
  UpdateSpool(const UpdateSpool&) = delete;
  UpdateSpool& operator=(const UpdateSpool&) = delete;

  // Appends `bytes` and returns where they start. `aligned`: start on a
  // 64-byte boundary (a tensor's first piece, so a mapped tensor is aligned);
  // otherwise right after the last append (a tensor's pieces stay contiguous).
  uint64_t append(std::span<const std::byte> bytes, bool aligned);
  void read(uint64_t offset, std::span<std::byte> out) const;

  // The whole file mapped read-only, for as long as the Mapping lives (also
  // after the spool is closed: the mapping keeps the unlinked file).
  class Mapping {
   public:
    Mapping(const std::byte* data, size_t size) : data_(data), size_(size) {}
    ~Mapping();
    Mapping(Mapping&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    Mapping& operator=(Mapping&&) = delete;
    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    // True when [p, p + bytes) lies inside the mapping.
    bool contains(const void* p, size_t bytes) const;
    // Drops the whole pages inside [p, p + bytes) from the process's memory;
    // they stay readable (read again from the file). p must be contained.
    void release_pages(const void* p, size_t bytes) const;

   private:
    const std::byte* data_;
    size_t size_;
  };
  Mapping map() const;

 private:
  void open();

  std::filesystem::path dir_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace flare::server
