// Checking a peer's certificate against the project's CA: the chain, the
// validity dates, the revocation list and the denied names, then the role.
// The mTLS layer calls this for every connection and logs the reason.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "identity/identity.hpp"

namespace flare::identity {

enum class Refusal {
  none,
  unreadable,  // not a PEM or DER certificate
  other_ca,    // not issued by this project's CA
  tampered,    // issuer matches but the signature does not verify
  expired,
  not_yet_valid,
  revoked,      // on the CA's revocation list, or a denied participant
  no_identity,  // no single flare:// URI naming a valid participant
  wrong_role,   // a valid identity, but not of the role expected here
  untrusted,    // any other verification failure (OpenSSL's reason given)
};
std::string_view refusal_name(Refusal refusal);  // "expired", "other_ca", ...

struct PeerCheck {
  Refusal refusal = Refusal::none;
  std::string reason;                // for the log: what was wrong, in words
  std::optional<Identity> identity;  // set when accepted (and when readable)
  bool accepted() const { return refusal == Refusal::none; }
};

class PeerVerifier {
 public:
  // `revocation_list_pem` empty: no CRL check. `denied` names participants
  // refused whatever their certificate says (the server's local config): a
  // name ("site-3") or an identity URI ("flare://site/site-3").
  explicit PeerVerifier(std::string_view ca_certificate_pem,
                        std::string_view revocation_list_pem = {},
                        std::vector<std::string> denied = {});
  ~PeerVerifier();
  PeerVerifier(PeerVerifier&&) noexcept;
  PeerVerifier& operator=(PeerVerifier&&) noexcept;

  // `certificate` in PEM or DER. `expected`: the role this peer must have
  // (nothing: any). `at`: the time to check validity at (0: now).
  PeerCheck check(std::string_view certificate, std::optional<Role> expected = std::nullopt,
                  std::time_t at = 0) const;

 private:
  struct Anchors;
  std::unique_ptr<Anchors> anchors_;
};

}  // namespace flare::identity
