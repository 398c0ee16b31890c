#include "transport/ephemeral_pki.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace flare::transport {

namespace {

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Freer<X509, X509_free>>;
using Crl = std::unique_ptr<X509_CRL, Freer<X509_CRL, X509_CRL_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("making a certificate: ") + what + " failed");
}

Key new_key() {
  Key key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EC key generation");
  return key;
}

std::string to_pem(const std::function<int(BIO*)>& write) {
  Bio bio(BIO_new(BIO_s_mem()));
  check(bio && write(bio.get()) == 1, "PEM encoding");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "a certificate extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Cert new_cert(EVP_PKEY* key, const std::string& cn, long serial, Validity validity) {
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(validity.from.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(validity.until.count()));
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) == 1,
        "the subject name");
  return cert;
}

}  // namespace

struct EphemeralCa::Keys {
  Key key;
  Cert cert;
};

EphemeralCa::EphemeralCa(const std::string& name) : keys_(std::make_unique<Keys>()) {
  keys_->key = new_key();
  keys_->cert = new_cert(keys_->key.get(), name, 1, {.until = std::chrono::hours(24 * 365)});
  X509* cert = keys_->cert.get();
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  add_extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert, cert, NID_subject_key_identifier, "hash");
  check(X509_sign(cert, keys_->key.get(), EVP_sha256()) > 0, "signing the CA");
  cert_pem_ = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

EphemeralCa::~EphemeralCa() = default;

IssuedCertificate EphemeralCa::issue(const PeerIdentity& id, Validity validity) {
  const long serial = next_serial_++;
  Key key = new_key();
  Cert cert = new_cert(key.get(), id.name, serial, validity);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(keys_->cert.get()));
  add_extension(cert.get(), keys_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), keys_->cert.get(), NID_key_usage,
                "critical,digitalSignature,keyEncipherment");
  add_extension(cert.get(), keys_->cert.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  // A server's also names this machine, which quiets gRPC's host-name log
  // line on loopback; sites check the server by its flare:// identity.
  const std::string names = "URI:" + identity_uri(id) +
                            (id.role == "server" ? ",DNS:localhost,IP:127.0.0.1" : "");
  add_extension(cert.get(), keys_->cert.get(), NID_subject_alt_name, names.c_str());
  check(X509_sign(cert.get(), keys_->key.get(), EVP_sha256()) > 0, "signing a certificate");
  return {to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }),
          to_pem([&](BIO* b) {
            return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
          }),
          serial};
}

std::string EphemeralCa::revocation_list(const std::vector<long>& revoked) const {
  Crl crl(X509_CRL_new());
  check(crl != nullptr, "X509_CRL_new");
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(keys_->cert.get()));
  ASN1_TIME* now = X509_gmtime_adj(nullptr, -60);
  ASN1_TIME* next = X509_gmtime_adj(nullptr, 7 * 24 * 3600);
  X509_CRL_set1_lastUpdate(crl.get(), now);
  X509_CRL_set1_nextUpdate(crl.get(), next);
  for (long serial : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    ASN1_INTEGER* number = ASN1_INTEGER_new();
    ASN1_INTEGER_set(number, serial);
    X509_REVOKED_set_serialNumber(entry, number);
    X509_REVOKED_set_revocationDate(entry, now);
    X509_CRL_add0_revoked(crl.get(), entry);
    ASN1_INTEGER_free(number);
  }
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  X509_CRL_sort(crl.get());
  check(X509_CRL_sign(crl.get(), keys_->key.get(), EVP_sha256()) > 0, "signing the CRL");
  return to_pem([&](BIO* b) { return PEM_write_bio_X509_CRL(b, crl.get()); });
}

namespace {

void write_private(const std::filesystem::path& file, const std::string& text, mode_t mode) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + file.string());
  ::fchmod(fd, mode);  // an existing file keeps its mode through open()
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

void write_tls_dir(const std::filesystem::path& dir, const TlsSettings& settings) {
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  write_private(dir / kCaFile, settings.ca_pem, 0644);
  write_private(dir / kCertFile, settings.cert_pem, 0644);
  write_private(dir / kKeyFile, settings.key_pem, 0600);
}

}  // namespace flare::transport
