#include <doctest/doctest.h>

#include "provision/project_file.hpp"
#include "temp_folder.hpp"

using namespace flare::provision;
using flare::testing::TempFolder;
using flare::testing::write_bytes;

namespace {

const std::string kValid = R"([project]
name = "example"
certificate_days = 30

[server]
name = "fl.example.com"
port = 9000

[sites.site-1]
org = "hospital-a"
nodes = 2

[sites.site-2]

[admins."admin@org.com"]
role = "project_admin"
)";

// The message reading `text` as project.toml gives.
std::string error_of(const TempFolder& dir, const std::string& text) {
  write_bytes(dir / "project.toml", text);
  try {
    read_project_file(dir / "project.toml");
  } catch (const ProjectFileError& e) {
    return e.what();
  }
  return "no error";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("a project file names the project, the server, the sites and the admins") {
  TempFolder dir;
  write_bytes(dir / "project.toml", kValid);
  auto project = read_project_file(dir / "project.toml");
  CHECK(project.name == "example");
  CHECK(project.certificate_days == 30);
  CHECK(project.ca_days == 3650);
  CHECK(project.server_name == "fl.example.com");
  CHECK(project.server_port == 9000);
  REQUIRE(project.sites.size() == 2);
  CHECK(project.sites[0].name == "site-1");
  CHECK(project.sites[0].organisation == "hospital-a");
  CHECK(project.sites[0].nodes == 2);
  CHECK(project.sites[1].nodes == 1);
  REQUIRE(project.admins.size() == 1);
  CHECK(project.admins[0].name == "admin@org.com");
  CHECK(project.admins[0].role == "project_admin");
}

TEST_CASE("project file errors name file:line, the key, what was expected and what was found") {
  TempFolder dir;
  auto file = (dir / "project.toml").string();
  CHECK(error_of(dir, replaced(kValid, "port = 9000", "port = 70000")) ==
        file + ":7: server.port: expected an integer from 1 to 65535, found the integer 70000");
  CHECK(
      error_of(dir, replaced(kValid, "nodes = 2", "nodes = \"two\"")) ==
      file +
          ":11: sites.site-1.nodes: expected an integer from 1 to 1024, found the string \"two\"");
  CHECK(error_of(dir, replaced(kValid, "[sites.site-2]", "[sites.\"site 2\"]")) ==
        file +
            ":13: sites.\"site 2\": expected only letters, digits, '.', '_' and '-', found \"site "
            "2\"");
  CHECK(error_of(dir, replaced(kValid, "role = \"project_admin\"", "role = \"root\"")) ==
        file +
            ":16: admins.\"admin@org.com\".role: expected \"project_admin\", \"org_admin\", "
            "\"lead\" or \"member\", found the string \"root\"");
  CHECK(error_of(dir, replaced(kValid, "port = 9000", "prot = 9000")) ==
        file + ":7: server.prot: expected one of: name, port, org, found an unknown key");
  CHECK(error_of(dir, replaced(kValid, "[admins.\"admin@org.com\"]", "[admins.admin]")) ==
        file + ":15: admins.admin: expected an e-mail address (user@domain), found \"admin\"");
  CHECK(error_of(dir, replaced(kValid, "name = \"fl.example.com\"", "name = \"fl_example\"")) ==
        file +
            ":6: server.name: expected a DNS name (labels of letters, digits and '-') or an IP "
            "address, found \"fl_example\"");
}

TEST_CASE("a project file without sites, server or project name says which is missing") {
  TempFolder dir;
  auto file = (dir / "project.toml").string();
  CHECK(error_of(dir, "[project]\nname = \"p\"\n[server]\nname = \"h\"\n") ==
        file + ": sites: expected at least one [sites.<name>] table, found none");
  CHECK(error_of(dir, "[project]\nname = \"p\"\n[sites.a]\n") ==
        file + ": server: expected a [server] table with the server's name, found none");
  CHECK(error_of(dir, "[server]\nname = \"h\"\n") ==
        file + ": project: expected a [project] table with a name, found none");
}

TEST_CASE("a site named like the server is refused: the names become folders side by side") {
  TempFolder dir;
  auto text = replaced(kValid, "[sites.site-2]", "[sites.\"fl.example.com\"]");
  CHECK(error_of(dir, text).find("expected a name no other participant has") != std::string::npos);
}

TEST_CASE("a CA that would expire before its certificates is refused") {
  TempFolder dir;
  auto text = replaced(kValid, "certificate_days = 30", "certificate_days = 30\nca_days = 10");
  CHECK(error_of(dir, text).find("project.ca_days: expected at least certificate_days (30)") !=
        std::string::npos);
}

TEST_CASE("a TOML syntax error names the line") {
  TempFolder dir;
  CHECK(
      error_of(dir, "[project]\nname = \n").starts_with((dir / "project.toml").string() + ":2: "));
}

TEST_CASE("a missing project file says it cannot be read") {
  TempFolder dir;
  CHECK_THROWS_WITH_AS(read_project_file(dir / "nope.toml"), doctest::Contains("cannot read"),
                       ProjectFileError);
}
