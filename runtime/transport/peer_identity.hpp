// Who a participant is, as its certificate says: a role and a name, written
// in the certificate as the SAN URI flare://<role>/<name> (the CN holds the
// name too). The same encoding as provisioning's (runtime/identity/).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flare::transport {

struct PeerIdentity {
  std::string role;  // "site", "server" or "admin"
  std::string name;  // the site's or server's name, the admin's email

  bool operator==(const PeerIdentity&) const = default;
};

inline constexpr std::string_view kIdentityScheme = "flare://";

// "flare://site/site-1" for {site, site-1}.
inline std::string identity_uri(const PeerIdentity& id) {
  return std::string(kIdentityScheme) + id.role + "/" + id.name;
}

// The identity in a flare:// URI; none for any other URI, or one without a
// role or a name.
inline std::optional<PeerIdentity> parse_identity_uri(std::string_view uri) {
  if (!uri.starts_with(kIdentityScheme)) return std::nullopt;
  uri.remove_prefix(kIdentityScheme.size());
  const auto slash = uri.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == uri.size())
    return std::nullopt;
  return PeerIdentity{std::string(uri.substr(0, slash)), std::string(uri.substr(slash + 1))};
}

}  // namespace flare::transport
