// Who a participant is: its role and its name, as bound to its certificate.
// The binding is a SAN URI `flare://<role>/<name>` (flare://site/site-1,
// flare://server/fl.example.com, flare://admin/admin@org.com): one field that
// says both, so a peer check never guesses the role from a name's shape.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flare::identity {

enum class Role { server, site, admin };

std::string_view role_name(Role role);  // "server", "site", "admin"
std::optional<Role> parse_role(std::string_view text);

struct Identity {
  Role role = Role::site;
  std::string name;
  bool operator==(const Identity&) const = default;
};

// "flare://site/site-1".
std::string identity_uri(const Identity& identity);
// The identity a URI names; nothing when it is not a flare:// identity URI or
// its name is not valid for its role.
std::optional<Identity> parse_identity_uri(std::string_view uri);

// Why `name` cannot be a participant of `role`, or empty when it can. Sites:
// 1-64 of [A-Za-z0-9._-], starting alphanumeric (they name folders and log
// lines). Admins: an e-mail address. Server: a DNS name or an IP address.
std::string name_problem(Role role, std::string_view name);

// True when `host` is an IPv4 or IPv6 literal (a SAN of type IP, not DNS).
bool is_ip_address(std::string_view host);

// Every failure of the identity library: OpenSSL errors, unreadable or
// inconsistent startup folders. The message names the file and the cause.
class IdentityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace flare::identity
