#include "provision/output_folder.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "storage/atomic_file.hpp"

namespace flare::provision {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail_errno(const std::string& what, const fs::path& path) {
  throw storage::StorageError(what + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

void make_private_folder(const fs::path& folder) {
  if (!folder.parent_path().empty() && !fs::exists(folder.parent_path())) {
    make_private_folder(folder.parent_path());
  }
  if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) fail_errno("cannot create", folder);
  if (::chmod(folder.c_str(), 0700) != 0) fail_errno("cannot make private", folder);
}

std::optional<std::string> read_if_present(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool write_if_changed(const fs::path& file, const std::string& content, unsigned mode) {
  if (read_if_present(file) == content) return false;
  storage::write_file_atomically(file, content, mode);
  return true;
}

void replace_folder(const fs::path& folder, const FolderContent& content) {
  fs::path staging = folder.parent_path() /
                     ("." + folder.filename().string() + ".staging-" + std::to_string(::getpid()));
  std::error_code ignored;
  fs::remove_all(staging, ignored);
  make_private_folder(staging);
  try {
    for (const auto& [name, file] : content) {
      storage::write_file_atomically(staging / name, file.first, file.second);
    }
    if (!fs::exists(folder)) {
      if (::rename(staging.c_str(), folder.c_str()) != 0)
        fail_errno("cannot move into place", folder);
      return;
    }
    if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, folder.c_str(), RENAME_EXCHANGE) != 0) {
      fail_errno("cannot swap in the new", folder);
    }
  } catch (...) {
    fs::remove_all(staging, ignored);
    throw;
  }
  fs::remove_all(staging, ignored);  // now the old content
}

}  // namespace flare::provision
