#include "identity/peer_check.hpp"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <algorithm>

#include "identity/openssl_handles.hpp"

namespace flare::identity {
namespace {

std::string name_text(const X509_NAME* name) {
  char buffer[512];
  X509_NAME_oneline(name, buffer, sizeof buffer);
  return buffer;
}

std::string time_text(const ASN1_TIME* time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(time, &parts) != 1) return "?";
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buffer;
}

std::string with_article(Role role) {
  return (role == Role::admin ? "an " : "a ") + std::string(role_name(role));
}

PeerCheck refuse(Refusal refusal, std::string reason) {
  return {refusal, std::move(reason), std::nullopt};
}

PeerCheck chain_refusal(int error, X509* certificate) {
  std::string subject = name_text(X509_get_subject_name(certificate));
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return refuse(Refusal::expired,
                    subject + " expired at " + time_text(X509_get0_notAfter(certificate)));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return refuse(Refusal::not_yet_valid, subject + " is not valid before " +
                                                time_text(X509_get0_notBefore(certificate)));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return refuse(Refusal::other_ca, subject + " was issued by " +
                                           name_text(X509_get_issuer_name(certificate)) +
                                           ", not by this project's CA");
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return refuse(Refusal::tampered,
                    subject + ": the CA's signature does not match the content (altered)");
    case X509_V_ERR_CERT_REVOKED:
      return refuse(Refusal::revoked, subject + " is on the CA's revocation list");
    default:
      return refuse(Refusal::untrusted, subject + ": " + X509_verify_cert_error_string(error));
  }
}

}  // namespace

std::string_view refusal_name(Refusal refusal) {
  switch (refusal) {
    case Refusal::none: return "none";
    case Refusal::unreadable: return "unreadable";
    case Refusal::other_ca: return "other_ca";
    case Refusal::tampered: return "tampered";
    case Refusal::expired: return "expired";
    case Refusal::not_yet_valid: return "not_yet_valid";
    case Refusal::revoked: return "revoked";
    case Refusal::no_identity: return "no_identity";
    case Refusal::wrong_role: return "wrong_role";
    case Refusal::untrusted: return "untrusted";
  }
  return "?";
}

struct PeerVerifier::Anchors {
  detail::Store store;
  bool check_revocation = false;
  std::vector<std::string> denied;
};

PeerVerifier::PeerVerifier(std::string_view ca_certificate_pem,
                           std::string_view revocation_list_pem, std::vector<std::string> denied)
    : anchors_(std::make_unique<Anchors>()) {
  anchors_->store.reset(X509_STORE_new());
  auto ca = detail::read_certificate(ca_certificate_pem);
  if (!ca) throw IdentityError("the CA certificate is not a PEM or DER certificate");
  if (!anchors_->store || X509_STORE_add_cert(anchors_->store.get(), ca.get()) != 1) {
    detail::fail_openssl("cannot trust the CA certificate");
  }
  if (!revocation_list_pem.empty()) {
    auto crl = detail::read_revocation_list_pem(revocation_list_pem, "the revocation list");
    EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
    if (ca_key == nullptr || X509_CRL_verify(crl.get(), ca_key) != 1) {
      ERR_clear_error();
      throw IdentityError("the revocation list is not signed by the CA");
    }
    if (X509_STORE_add_crl(anchors_->store.get(), crl.get()) != 1) {
      detail::fail_openssl("cannot use the revocation list");
    }
    anchors_->check_revocation = true;
  }
  anchors_->denied = std::move(denied);
}

PeerVerifier::~PeerVerifier() = default;
PeerVerifier::PeerVerifier(PeerVerifier&&) noexcept = default;
PeerVerifier& PeerVerifier::operator=(PeerVerifier&&) noexcept = default;

PeerCheck PeerVerifier::check(std::string_view certificate, std::optional<Role> expected,
                              std::time_t at) const {
  auto peer = detail::read_certificate(certificate);
  if (!peer) return refuse(Refusal::unreadable, "not a PEM or DER certificate");

  detail::StoreContext context(X509_STORE_CTX_new());
  if (!context ||
      X509_STORE_CTX_init(context.get(), anchors_->store.get(), peer.get(), nullptr) != 1) {
    detail::fail_openssl("cannot start a certificate check");
  }
  X509_VERIFY_PARAM* parameters = X509_STORE_CTX_get0_param(context.get());
  if (anchors_->check_revocation) X509_VERIFY_PARAM_set_flags(parameters, X509_V_FLAG_CRL_CHECK);
  if (at != 0) X509_VERIFY_PARAM_set_time(parameters, at);
  if (X509_verify_cert(context.get()) != 1) {
    int error = X509_STORE_CTX_get_error(context.get());
    ERR_clear_error();
    return chain_refusal(error, peer.get());
  }

  auto uris = detail::identity_uris(peer.get());
  std::optional<Identity> identity;
  if (uris.size() == 1) identity = parse_identity_uri(uris.front());
  if (!identity) {
    return refuse(Refusal::no_identity,
                  name_text(X509_get_subject_name(peer.get())) +
                      ": expected one flare://<role>/<name> URI naming a participant, found " +
                      std::to_string(uris.size()) + (uris.size() == 1 ? " invalid one" : ""));
  }
  std::string who = identity_uri(*identity);
  const auto& denied = anchors_->denied;
  const bool is_denied = std::any_of(denied.begin(), denied.end(), [&](const std::string& entry) {
    return entry == identity->name || entry == who;
  });
  if (is_denied) {
    return {Refusal::revoked, who + " is denied by the server's configuration", identity};
  }
  if (expected && identity->role != *expected) {
    return {Refusal::wrong_role,
            who + " is " + with_article(identity->role) + ", expected " + with_article(*expected),
            identity};
  }
  return {Refusal::none, who, identity};
}

}  // namespace flare::identity
