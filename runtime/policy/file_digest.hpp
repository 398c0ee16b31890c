// SHA-256 of a file (OpenSSL EVP, streamed), as lowercase hex: what a site's
// policy pins a plugin library to.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace flare::policy {

// Throws std::runtime_error naming the file and the system's reason.
std::string sha256_of_file(const std::filesystem::path& file);
// The same of an open descriptor, read from its start (the descriptor a
// loader then opens the library through, so the bytes hashed are the ones
// loaded).
std::string sha256_of_fd(int fd, const std::filesystem::path& named_as);

}  // namespace flare::policy
