// RAII owners of OpenSSL objects and PEM/DER conversions. Internal to
// flare_identity: callers outside it see PEM text only.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flare::identity::detail {

template <auto Free>
struct Freer {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PrivateKey = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using Certificate = std::unique_ptr<X509, Freer<X509_free>>;
using RevocationList = std::unique_ptr<X509_CRL, Freer<X509_CRL_free>>;
using Store = std::unique_ptr<X509_STORE, Freer<X509_STORE_free>>;
using StoreContext = std::unique_ptr<X509_STORE_CTX, Freer<X509_STORE_CTX_free>>;

// Throws IdentityError: "<what>: <OpenSSL's error queue>", and clears the queue.
[[noreturn]] void fail_openssl(std::string_view what);

// A fresh ECDSA P-256 key.
PrivateKey generate_key();
std::string key_pem(EVP_PKEY* key);  // PKCS#8, unencrypted (the file is 0600)
PrivateKey read_key_pem(std::string_view pem, std::string_view what);

std::string certificate_pem(X509* certificate);
// PEM, or DER when the text does not start like PEM. Null when unreadable.
Certificate read_certificate(std::string_view pem_or_der);

std::string revocation_list_pem(X509_CRL* crl);
RevocationList read_revocation_list_pem(std::string_view pem, std::string_view what);

// The flare:// URIs among a certificate's subject alternative names.
std::vector<std::string> identity_uris(X509* certificate);

}  // namespace flare::identity::detail
