// [clients] names: a job's sites as the deployment names them (the name in
// each site's certificate), in place of site-1 .. site-<count>.
#include <doctest/doctest.h>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

namespace fs = std::filesystem;
using flare::jobspec::JobSpec;
using flare::jobspec::JobSpecError;
using flare::jobspec::load_job;
using flare::jobspec::SiteSpec;

namespace {

std::vector<std::string> names_of(const JobSpec& spec) {
  std::vector<std::string> names;
  for (const SiteSpec& site : spec.sites) names.push_back(site.name);
  return names;
}

JobSpec load_text(const std::string& text, const std::vector<std::string>& overrides = {}) {
  const JobFolder folder;
  return load_job(folder.write_job("job.toml", text), overrides);
}

}  // namespace

TEST_CASE("names the sites by the list, in its order, with the count its length") {
  const JobSpec spec = load_text("[clients]\nnames = [\"hospital-b\", \"hospital-a\", \"lab.3_x\"]\n");
  CHECK(names_of(spec) == std::vector<std::string>{"hospital-b", "hospital-a", "lab.3_x"});
  CHECK(spec.n_clients == 3);
  CHECK(spec.min_clients == 3);
  CHECK_FALSE(flare::jobspec::has_default_site_names(spec));
  CHECK(flare::jobspec::site_list(spec) == "hospital-b, hospital-a, lab.3_x");
  // Given too, the count must agree.
  CHECK(names_of(load_text("[clients]\ncount = 2\nnames = [\"a\", \"b\"]\n")) ==
        std::vector<std::string>{"a", "b"});
}

TEST_CASE("keeps site-1 .. site-<count> without a names list") {
  const JobSpec spec = load_text("[clients]\ncount = 3\n");
  CHECK(names_of(spec) == std::vector<std::string>{"site-1", "site-2", "site-3"});
  CHECK(flare::jobspec::has_default_site_names(spec));
  CHECK(flare::jobspec::site_list(spec) == "site-1 to site-3");
}

TEST_CASE("rejects a count that is not the number of names, naming both keys") {
  CHECK(error_for("[clients]\ncount = 3\nnames = [\"a\", \"b\"]\n") ==
        "job.toml:2: clients.count: expected 2, the number of names in clients.names (one site "
        "per name), found the integer 3");
  // flare-run --n_clients 3 is this override: a named job keeps its names' count.
  const JobFolder folder;
  const auto file = folder.write_job("job.toml", "[clients]\nnames = [\"a\", \"b\"]\n");
  CHECK(message_of<JobSpecError>([&] { load_job(file, {"clients.count=3"}); }) ==
        file.string() +
            ": --set clients.count: expected 2, the number of names in clients.names (one site "
            "per name), found the integer 3");
  CHECK(names_of(load_job(file, {"clients.count=2"})) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("rejects a name given twice, naming both places") {
  CHECK(error_for("[clients]\nnames = [\"a\", \"b\", \"a\"]\n") ==
        "job.toml:2: clients.names[2]: expected a name no other site has, found the string "
        "\"a\", already clients.names[0]");
}

TEST_CASE("rejects a name that cannot be a site's identity, with identity's reason") {
  CHECK(error_for("[clients]\nnames = [\"a b\"]\n") ==
        "job.toml:2: clients.names[0]: expected a site name (only letters, digits, '.', '_' and "
        "'-'), found the string \"a b\"");
  CHECK(error_for("[clients]\nnames = [\"ok\", \"-lead\"]\n") ==
        "job.toml:2: clients.names[1]: expected a site name (a name starting with a letter or "
        "digit), found the string \"-lead\"");
  CHECK(error_for("[clients]\nnames = [\"" + std::string(65, 'x') + "\"]\n")
            .ends_with("expected a site name (1 to 64 characters), found the string \"" +
                       std::string(65, 'x') + "\""));
  CHECK(error_for("[clients]\nnames = [\"\"]\n") ==
        "job.toml:2: clients.names[0]: expected a site name (1 to 64 characters), found the "
        "string \"\"");
  CHECK(error_for("[clients]\nnames = [1]\n") ==
        "job.toml:2: clients.names[0]: expected a site name (a string), found the integer 1");
  CHECK(error_for("[clients]\nnames = []\n") ==
        "job.toml:2: clients.names: expected an array of 1 to 100000 site names, found 0 names");
  CHECK(error_for("[clients]\nnames = \"a\"\n") ==
        "job.toml:2: clients.names: expected an array of 1 to 100000 site names, found the "
        "string \"a\"");
}

TEST_CASE("takes [sites.<name>] overrides by the names, and refuses a name not in the job") {
  const JobSpec spec = load_text(
      "[clients]\nnames = [\"hospital-a\", \"hospital-b\"]\ndevices = 2\n"
      "[sites.hospital-b]\ndevices = 1\n");
  REQUIRE(spec.sites.size() == 2);
  CHECK(spec.sites[0].devices == 2);
  CHECK(spec.sites[1].devices == 1);
  CHECK(error_for("[clients]\nnames = [\"hospital-a\", \"hospital-b\"]\n[sites.site-1]\ndevices = 1\n") ==
        "job.toml:3: sites.site-1: expected a site of this job (hospital-a, hospital-b), found "
        "unknown site site-1");
}

TEST_CASE("lists the first few of many names in a message") {
  std::string names;
  for (int i = 0; i < 7; ++i) names += (i ? ", \"s" : "\"s") + std::to_string(i) + "\"";
  CHECK(error_for("[clients]\nnames = [" + names + "]\n[sites.x]\ndevices = 1\n") ==
        "job.toml:3: sites.x: expected a site of this job (s0, s1, s2, s3, s4, ... (7 in all)), "
        "found unknown site x");
}

TEST_CASE("exports the names so that the job loads back equal, and default names as before") {
  const JobFolder folder;
  const JobSpec named = load_text(
      "[clients]\nnames = [\"hospital-b\", \"hospital-a\"]\n[sites.hospital-a]\nmax_restarts = 2\n");
  flare::jobspec::export_job(named, folder.root() / "named");
  JobSpec loaded = load_job(folder.root() / "named/job.toml");
  loaded.source = named.source;
  CHECK(loaded == named);
  CHECK(flare::jobspec::to_toml(named).find("names = [\"hospital-b\", \"hospital-a\"]\n") !=
        std::string::npos);
  // site-1 .. site-N are not written as a list: an exported job still takes --n_clients.
  const JobSpec plain = load_text("[clients]\ncount = 2\n");
  CHECK(flare::jobspec::to_toml(plain).find("\nnames = ") == std::string::npos);
}

TEST_CASE("names the sites from the command line") {
  const JobSpec spec = load_text("", {"clients.names=[\"north\", \"south\"]"});
  CHECK(names_of(spec) == std::vector<std::string>{"north", "south"});
}
