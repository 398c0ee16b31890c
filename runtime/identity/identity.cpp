#include "identity/identity.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace flare::identity {
namespace {

constexpr std::string_view kUriScheme = "flare://";

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string site_name_problem(std::string_view name) {
  if (name.empty() || name.size() > 64) return "1 to 64 characters";
  if (!is_alnum(name.front())) return "a name starting with a letter or digit";
  bool ok = std::all_of(name.begin(), name.end(),
                        [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
  return ok ? "" : "only letters, digits, '.', '_' and '-'";
}

std::string email_problem(std::string_view name) {
  auto at = name.find('@');
  if (name.size() > 254 || at == std::string_view::npos || at == 0 ||
      name.find('@', at + 1) != std::string_view::npos || at + 1 == name.size()) {
    return "an e-mail address (user@domain)";
  }
  bool ok = std::all_of(name.begin(), name.end(), [](char c) {
    return is_alnum(c) || std::string_view("._%+-@").find(c) != std::string_view::npos;
  });
  return ok ? "" : "an e-mail address of letters, digits and ._%+-";
}

std::string host_problem(std::string_view host) {
  if (is_ip_address(host)) return "";
  if (host.empty() || host.size() > 253) return "a DNS name of 1 to 253 characters";
  std::size_t start = 0;
  while (start <= host.size()) {
    auto end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    auto label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; })) {
      return "a DNS name (labels of letters, digits and '-') or an IP address";
    }
    start = end + 1;
  }
  return "";
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::server: return "server";
    case Role::site: return "site";
    case Role::admin: return "admin";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view text) {
  for (Role role : {Role::server, Role::site, Role::admin}) {
    if (text == role_name(role)) return role;
  }
  return std::nullopt;
}

std::string identity_uri(const Identity& identity) {
  return std::string(kUriScheme) + std::string(role_name(identity.role)) + "/" + identity.name;
}

std::optional<Identity> parse_identity_uri(std::string_view uri) {
  if (!uri.starts_with(kUriScheme)) return std::nullopt;
  uri.remove_prefix(kUriScheme.size());
  auto slash = uri.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto role = parse_role(uri.substr(0, slash));
  if (!role) return std::nullopt;
  Identity identity{*role, std::string(uri.substr(slash + 1))};
  if (!name_problem(identity.role, identity.name).empty()) return std::nullopt;
  return identity;
}

std::string name_problem(Role role, std::string_view name) {
  switch (role) {
    case Role::site: return site_name_problem(name);
    case Role::admin: return email_problem(name);
    case Role::server: return host_problem(name);
  }
  return "a known role";
}

bool is_ip_address(std::string_view host) {
  std::string text(host);
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

}  // namespace flare::identity
