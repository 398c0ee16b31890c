#include "storage/atomic_file.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "temp_folder.hpp"

using flare::storage::AtomicFile;
using flare::storage::StorageError;
using flare::storage::write_file_atomically;
using flare::testing::read_bytes;
using flare::testing::TempFolder;

TEST_CASE("an atomic write replaces the file and leaves no temp file behind") {
  TempFolder dir;
  write_file_atomically(dir / "global_model.bin", "first");
  write_file_atomically(dir / "global_model.bin", "second, longer");
  CHECK(read_bytes(dir / "global_model.bin") == "second, longer");
  CHECK(dir.entries() == std::vector<std::string>{"global_model.bin"});
}

TEST_CASE("an atomic file abandoned before commit leaves the old content and no temp file") {
  TempFolder dir;
  write_file_atomically(dir / "checkpoint", "old");
  {
    AtomicFile out(dir / "checkpoint");
    out.write(std::string_view("half of the new"));
    CHECK(read_bytes(dir / "checkpoint") == "old");
    CHECK(dir.entries().size() == 2);  // the temp file lives beside the target meanwhile
  }
  CHECK(read_bytes(dir / "checkpoint") == "old");
  CHECK(dir.entries() == std::vector<std::string>{"checkpoint"});
}

TEST_CASE("writing into a missing folder fails naming the file") {
  TempFolder dir;
  auto target = dir / "no-such-folder" / "model.safetensors";
  CHECK_THROWS_WITH_AS(write_file_atomically(target, "x"), doctest::Contains(target.c_str()),
                       StorageError);
}

TEST_CASE("an atomic file created with mode 0600 is private to its owner, whatever the umask") {
  TempFolder dir;
  mode_t old_umask = ::umask(0);
  write_file_atomically(dir / "participant.key", "secret", 0600);
  ::umask(old_umask);
  CHECK((std::filesystem::status(dir / "participant.key").permissions() &
         std::filesystem::perms::all) == (std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_write));
}
