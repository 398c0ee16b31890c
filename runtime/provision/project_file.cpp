#include "provision/project_file.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>
#include <sstream>

#include "identity/identity.hpp"

namespace flare::provision {
namespace {

using identity::Role;

std::string describe(const toml::node& node) {
  std::ostringstream out;
  if (node.is_string()) return "the string \"" + node.as_string()->get() + "\"";
  if (node.is_table()) return "a table";
  if (node.is_array()) return "an array";
  node.visit([&](const auto& value) {
    if constexpr (toml::is_value<decltype(value)>) out << "the " << node.type() << " " << value;
  });
  return out.str();
}

class Reader {
 public:
  Reader(const toml::table& table, std::string path, const std::filesystem::path& file)
      : table_(table), path_(std::move(path)), file_(file) {}

  std::string key(std::string_view name) const {
    bool bare = std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
    std::string quoted = bare ? std::string(name) : "\"" + std::string(name) + "\"";
    return path_.empty() ? quoted : path_ + "." + quoted;
  }

  [[noreturn]] void fail_node(const toml::node& node, const std::string& key_path,
                              std::string_view expected, const std::string& found) const {
    throw ProjectFileError(file_.string() + ":" + std::to_string(node.source().begin.line) + ": " +
                           key_path + ": expected " + std::string(expected) + ", found " + found);
  }
  [[noreturn]] void fail(std::string_view name, std::string_view expected) const {
    const toml::node& node = *table_.get(name);
    fail_node(node, key(name), expected, describe(node));
  }
  [[noreturn]] void fail_missing(std::string_view name, std::string_view expected) const {
    throw ProjectFileError(file_.string() + ": " + key(name) + ": expected " +
                           std::string(expected) + ", found none");
  }

  void allow_only(std::initializer_list<std::string_view> known) const {
    for (const auto& [name, node] : table_) {
      if (std::find(known.begin(), known.end(), name.str()) != known.end()) continue;
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail_node(node, key(name.str()), "one of: " + list, "an unknown key");
    }
  }

  std::optional<Reader> table(std::string_view name) const {
    const toml::node* node = table_.get(name);
    if (node == nullptr) return std::nullopt;
    if (!node->is_table()) fail(name, "a table");
    return Reader(*node->as_table(), key(name), file_);
  }

  std::optional<std::string> string(std::string_view name) const {
    const toml::node* node = table_.get(name);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string() || node->as_string()->get().empty()) fail(name, "a non-empty string");
    return node->as_string()->get();
  }

  std::optional<std::int64_t> integer(std::string_view name, std::int64_t low,
                                      std::int64_t high) const {
    const toml::node* node = table_.get(name);
    if (node == nullptr) return std::nullopt;
    if (!node->is_integer() || node->as_integer()->get() < low ||
        node->as_integer()->get() > high) {
      fail(name, "an integer from " + std::to_string(low) + " to " + std::to_string(high));
    }
    return node->as_integer()->get();
  }

  // A participant name valid for `role` (identity::name_problem).
  void check_name(const toml::node& node, const std::string& key_path, Role role,
                  const std::string& name) const {
    auto problem = identity::name_problem(role, name);
    if (!problem.empty()) fail_node(node, key_path, problem, "\"" + name + "\"");
  }

  const toml::table& node() const { return table_; }

 private:
  const toml::table& table_;
  std::string path_;
  const std::filesystem::path& file_;
};

void read_project_table(const Reader& root, Project& project) {
  auto table = root.table("project");
  if (!table) root.fail_missing("project", "a [project] table with a name");
  table->allow_only({"name", "certificate_days", "ca_days"});
  auto name = table->string("name");
  if (!name) table->fail_missing("name", "the project's name");
  table->check_name(*table->node().get("name"), table->key("name"), Role::site, *name);
  project.name = *name;
  project.certificate_days =
      static_cast<int>(table->integer("certificate_days", 1, 36500).value_or(365));
  auto ca_days = table->integer("ca_days", 1, 36500);
  if (ca_days && *ca_days < project.certificate_days) {
    table->fail("ca_days", "at least certificate_days (" +
                               std::to_string(project.certificate_days) +
                               "): the CA must outlive what it signs");
  }
  project.ca_days = static_cast<int>(ca_days.value_or(std::max(3650, project.certificate_days)));
}

void read_server_table(const Reader& root, Project& project) {
  auto table = root.table("server");
  if (!table) root.fail_missing("server", "a [server] table with the server's name");
  table->allow_only({"name", "port", "org"});
  auto name = table->string("name");
  if (!name) table->fail_missing("name", "the server's DNS name or IP address");
  table->check_name(*table->node().get("name"), table->key("name"), Role::server, *name);
  project.server_name = *name;
  project.server_port = static_cast<std::uint16_t>(table->integer("port", 1, 65535).value_or(8002));
  project.server_organisation = table->string("org").value_or("");
}

void read_sites(const Reader& root, Project& project) {
  auto sites = root.table("sites");
  if (!sites || sites->node().empty()) {
    root.fail_missing("sites", "at least one [sites.<name>] table");
  }
  for (const auto& [name, node] : sites->node()) {
    auto site = sites->table(name.str());
    sites->check_name(node, sites->key(name.str()), Role::site, std::string(name.str()));
    site->allow_only({"org", "nodes"});
    project.sites.push_back({std::string(name.str()), site->string("org").value_or(""),
                             static_cast<int>(site->integer("nodes", 1, 1024).value_or(1))});
  }
}

void read_admins(const Reader& root, Project& project) {
  auto admins = root.table("admins");
  if (!admins) return;
  for (const auto& [name, node] : admins->node()) {
    auto admin = admins->table(name.str());
    admins->check_name(node, admins->key(name.str()), Role::admin, std::string(name.str()));
    admin->allow_only({"org", "role"});
    auto role = admin->string("role").value_or("member");
    if (role != "project_admin" && role != "org_admin" && role != "lead" && role != "member") {
      admin->fail("role", "\"project_admin\", \"org_admin\", \"lead\" or \"member\"");
    }
    project.admins.push_back({std::string(name.str()), admin->string("org").value_or(""), role});
  }
}

// Names become folder names side by side: one name, one participant.
void check_unique_names(const Reader& root, const Project& project) {
  std::set<std::string> seen{project.server_name};
  auto claim = [&](const std::string& name, const std::string& key_path) {
    if (!seen.insert(name).second) {
      const toml::node* node = root.node().at_path(key_path).node();
      root.fail_node(node ? *node : root.node(), key_path, "a name no other participant has",
                     "\"" + name + "\" again");
    }
  };
  for (const auto& site : project.sites) claim(site.name, "sites." + site.name);
}

}  // namespace

Project read_project_file(const std::filesystem::path& file) {
  toml::table document;
  try {
    document = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0) {
      throw ProjectFileError(file.string() + ": cannot read: " + std::string(e.description()));
    }
    throw ProjectFileError(file.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
  }
  Reader root(document, "", file);
  root.allow_only({"project", "server", "sites", "admins"});
  Project project;
  read_project_table(root, project);
  read_server_table(root, project);
  read_sites(root, project);
  read_admins(root, project);
  check_unique_names(root, project);
  return project;
}

}  // namespace flare::provision
