// The provisioned certificates in a real TLS 1.3 mutual handshake through
// OpenSSL's SSL API (the library gRPC links here), over an in-memory BIO pair.
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "identity/ephemeral.hpp"
#include "identity/peer_check.hpp"

using namespace flare::identity;

namespace {

using Context = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
using Connection = std::unique_ptr<SSL, decltype(&SSL_free)>;

X509* certificate_of(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return certificate;
}

// A TLS 1.3-only context presenting `kit`'s certificate and requiring the
// peer's, checked against `kit`'s CA.
Context context_for(const StartupKit& kit, bool server) {
  Context context(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_min_proto_version(context.get(), TLS1_3_VERSION);
  X509* own = certificate_of(kit.certificate_pem);
  SSL_CTX_use_certificate(context.get(), own);
  X509_free(own);
  BIO* bio =
      BIO_new_mem_buf(kit.private_key_pem.data(), static_cast<int>(kit.private_key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  SSL_CTX_use_PrivateKey(context.get(), key);
  EVP_PKEY_free(key);
  X509* ca = certificate_of(kit.ca_certificate_pem);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(context.get()), ca);
  X509_free(ca);
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return context;
}

// Drives both ends until each finishes (or one fails); true when both did.
bool handshake(SSL* client, SSL* server) {
  bool client_done = false, server_done = false;
  for (int step = 0; step < 100 && !(client_done && server_done); ++step) {
    if (!client_done) {
      int r = SSL_do_handshake(client);
      if (r == 1)
        client_done = true;
      else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ)
        return false;
    }
    if (!server_done) {
      int r = SSL_do_handshake(server);
      if (r == 1)
        server_done = true;
      else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ)
        return false;
    }
  }
  return client_done && server_done;
}

struct Link {
  Connection client{nullptr, SSL_free};
  Connection server{nullptr, SSL_free};
};

Link connect(SSL_CTX* client_context, SSL_CTX* server_context, const std::string& host) {
  Link link{Connection(SSL_new(client_context), SSL_free),
            Connection(SSL_new(server_context), SSL_free)};
  BIO *client_end = nullptr, *server_end = nullptr;
  BIO_new_bio_pair(&client_end, 0, &server_end, 0);
  SSL_set_bio(link.client.get(), client_end, client_end);
  SSL_set_bio(link.server.get(), server_end, server_end);
  SSL_set_connect_state(link.client.get());
  SSL_set_accept_state(link.server.get());
  SSL_set1_host(link.client.get(), host.c_str());  // the client checks the server's name
  return link;
}

std::string peer_pem(SSL* ssl) {
  X509* peer = SSL_get1_peer_certificate(ssl);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, peer);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  X509_free(peer);
  return pem;
}

}  // namespace

TEST_CASE("a provisioned site and server complete a mutual TLS 1.3 handshake and name each other") {
  auto federation = provision_ephemeral("fl.example.com", 8002, {"site-1"});
  auto server_context = context_for(federation.server, true);
  auto client_context = context_for(federation.sites[0], false);
  auto link = connect(client_context.get(), server_context.get(), "fl.example.com");
  REQUIRE(handshake(link.client.get(), link.server.get()));
  CHECK(std::string(SSL_get_version(link.client.get())) == "TLSv1.3");

  PeerVerifier verifier(federation.ca_certificate_pem);
  auto site = verifier.check(peer_pem(link.server.get()), Role::site);
  CHECK(site.identity == Identity{Role::site, "site-1"});
  auto server = verifier.check(peer_pem(link.client.get()), Role::server);
  CHECK(server.identity == Identity{Role::server, "fl.example.com"});
  ERR_clear_error();
}

TEST_CASE("the handshake fails for a site of another CA and for a wrong server name") {
  auto federation = provision_ephemeral("fl.example.com", 8002, {"site-1"});
  auto stranger = provision_ephemeral("fl.example.com", 8002, {"site-1"});
  auto server_context = context_for(federation.server, true);
  auto stranger_context = context_for(stranger.sites[0], false);
  auto refused = connect(stranger_context.get(), server_context.get(), "fl.example.com");
  CHECK_FALSE(handshake(refused.client.get(), refused.server.get()));

  auto client_context = context_for(federation.sites[0], false);
  auto misnamed = connect(client_context.get(), server_context.get(), "other.example.com");
  CHECK_FALSE(handshake(misnamed.client.get(), misnamed.server.get()));
  ERR_clear_error();
}
