#include "identity/openssl_handles.hpp"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <vector>

#include "identity/identity.hpp"

namespace flare::identity::detail {
namespace {

using Bio = std::unique_ptr<BIO, Freer<BIO_free>>;

Bio memory_bio() {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio) fail_openssl("cannot allocate a memory BIO");
  return bio;
}

Bio reading_bio(std::string_view text) {
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) fail_openssl("cannot allocate a memory BIO");
  return bio;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return {data, static_cast<std::size_t>(size)};
}

}  // namespace

void fail_openssl(std::string_view what) {
  std::string message(what);
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    message += message.size() == what.size() ? ": " : "; ";
    message += text;
  }
  throw IdentityError(message);
}

PrivateKey generate_key() {
  PrivateKey key(EVP_EC_gen("P-256"));
  if (!key) fail_openssl("cannot generate an ECDSA P-256 key");
  return key;
}

std::string key_pem(EVP_PKEY* key) {
  auto bio = memory_bio();
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail_openssl("cannot encode a private key");
  }
  return bio_text(bio.get());
}

PrivateKey read_key_pem(std::string_view pem, std::string_view what) {
  auto bio = reading_bio(pem);
  PrivateKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) fail_openssl(std::string(what) + ": not a PEM private key");
  return key;
}

std::string certificate_pem(X509* certificate) {
  auto bio = memory_bio();
  if (PEM_write_bio_X509(bio.get(), certificate) != 1) fail_openssl("cannot encode a certificate");
  return bio_text(bio.get());
}

Certificate read_certificate(std::string_view pem_or_der) {
  Certificate certificate;
  if (pem_or_der.find("-----BEGIN") != std::string_view::npos) {
    auto bio = reading_bio(pem_or_der);
    certificate.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  } else {
    auto* p = reinterpret_cast<const unsigned char*>(pem_or_der.data());
    certificate.reset(d2i_X509(nullptr, &p, static_cast<long>(pem_or_der.size())));
  }
  ERR_clear_error();
  return certificate;
}

std::string revocation_list_pem(X509_CRL* crl) {
  auto bio = memory_bio();
  if (PEM_write_bio_X509_CRL(bio.get(), crl) != 1) fail_openssl("cannot encode a revocation list");
  return bio_text(bio.get());
}

RevocationList read_revocation_list_pem(std::string_view pem, std::string_view what) {
  auto bio = reading_bio(pem);
  RevocationList crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) fail_openssl(std::string(what) + ": not a PEM revocation list");
  return crl;
}

std::vector<std::string> identity_uris(X509* certificate) {
  std::vector<std::string> uris;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                     static_cast<std::size_t>(ASN1_STRING_length(uri)));
    if (text.starts_with("flare://")) uris.push_back(std::move(text));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

}  // namespace flare::identity::detail
