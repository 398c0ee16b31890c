#include "common/sha256.hpp"

#include <stdexcept>

#include <openssl/evp.h>

namespace flare::common {

namespace {

EVP_MD_CTX* context_of(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  if (!context_ || EVP_DigestInit_ex(context_of(context_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(context_of(context_));
    throw std::runtime_error("OpenSSL could not start a SHA-256 digest");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(context_of(context_)); }

void Sha256::update(std::span<const std::byte> bytes) {
  EVP_DigestUpdate(context_of(context_), bytes.data(), bytes.size());
}

Sha256Digest Sha256::finish() {
  Sha256Digest digest{};
  unsigned size = 0;
  EVP_DigestFinal_ex(context_of(context_), reinterpret_cast<unsigned char*>(digest.data()), &size);
  return digest;
}

std::string to_hex(std::span<const std::byte> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (const auto b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    hex += kHex[v >> 4];
    hex += kHex[v & 15];
  }
  return hex;
}

}  // namespace flare::common
