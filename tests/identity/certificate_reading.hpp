// Reading certificates back in tests with OpenSSL directly, independent of
// what flare_identity itself parses.
#pragma once

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

namespace flare::testing {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

inline X509Ptr parse_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr certificate(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr), X509_free);
  BIO_free(bio);
  return certificate;
}

inline std::string der_of(X509* certificate) {
  unsigned char* der = nullptr;
  int size = i2d_X509(certificate, &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(size));
  OPENSSL_free(der);
  return bytes;
}

inline std::string common_name(X509* certificate) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, buffer,
                            sizeof buffer);
  return buffer;
}

// "URI:flare://site/site-1", "DNS:fl.example.com", "email:a@b.c".
inline std::vector<std::string> alt_names(X509* certificate) {
  std::vector<std::string> names;
  auto* all = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; all != nullptr && i < sk_GENERAL_NAME_num(all); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(all, i);
    auto text = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<std::size_t>(ASN1_STRING_length(s)));
    };
    if (name->type == GEN_URI) names.push_back("URI:" + text(name->d.uniformResourceIdentifier));
    if (name->type == GEN_DNS) names.push_back("DNS:" + text(name->d.dNSName));
    if (name->type == GEN_EMAIL) names.push_back("email:" + text(name->d.rfc822Name));
    if (name->type == GEN_IPADD) names.push_back("IP");
  }
  GENERAL_NAMES_free(all);
  return names;
}

}  // namespace flare::testing
