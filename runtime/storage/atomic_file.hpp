// Writing a file so that readers see either the old content or the complete new
// one, never a torn write: a temp file in the same folder, fsync, rename, then
// fsync of the folder so the rename itself survives a crash.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

#include "storage/storage_error.hpp"

namespace flare::storage {

// Streams content into a temp file beside `target`; commit() publishes it.
// Destroyed without commit() (an exception on the way), it removes the temp
// file and leaves `target` as it was. `mode` is the file's permission bits
// from its creation on: 0600 by default, as every file of a run is private
// to its owner (a key is never readable by others, not even for a moment). Not thread-safe.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target, unsigned mode = 0600);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void write(std::string_view bytes);
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

// Replaces `file` with `bytes` atomically; throws StorageError naming the file.
void write_file_atomically(const std::filesystem::path& file, std::string_view bytes,
                           unsigned mode = 0600);

}  // namespace flare::storage
