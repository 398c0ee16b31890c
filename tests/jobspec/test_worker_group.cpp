// The worker-group keys of [clients] and [sites.<name>]: devices, accelerator,
// backend, nodes, rendezvous and its timeout, restarts and progress timeout.
#include <doctest/doctest.h>
#include <toml++/toml.h>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

namespace fs = std::filesystem;
using flare::jobspec::export_job;
using flare::jobspec::JobSpec;
using flare::jobspec::load_job;
using flare::jobspec::SiteSpec;
using flare::jobspec::to_toml;

TEST_CASE("gives a worker group one node, no restarts and 600 s / 300 s progress / rendezvous "
          "timeouts by default") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml", ""));
  const SiteSpec expected{.name = "site-1", .devices = 2};
  CHECK(spec.sites.front() == expected);
  CHECK(expected.accelerator == "auto");
  CHECK(expected.backend == "auto");
  CHECK(expected.nodes == 1);
  CHECK(expected.master_addr == "127.0.0.1");
  CHECK(expected.master_port == 0);
  CHECK(expected.max_restarts == 0);
  CHECK(expected.progress_timeout_s == 600);
  CHECK(expected.rendezvous_timeout_s == 300);
}

TEST_CASE("gives every site the worker group of [clients]") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job(
      "job.toml",
      "[clients]\ncount = 2\ndevices = [1, 0]\naccelerator = \"cuda\"\nbackend = \"nccl\"\n"
      "nodes = 2\nmaster_addr = \"10.0.0.5\"\nmaster_port = 29500\nmax_restarts = 3\n"
      "progress_timeout_s = 30\nrendezvous_timeout_s = 45\n"));
  const SiteSpec group{.name = {},
                       .devices = 2,
                       .device_ids = {1, 0},
                       .accelerator = "cuda",
                       .backend = "nccl",
                       .nodes = 2,
                       .master_addr = "10.0.0.5",
                       .master_port = 29500,
                       .max_restarts = 3,
                       .progress_timeout_s = 30,
                       .rendezvous_timeout_s = 45};
  CHECK(spec.site_defaults == group);
  REQUIRE(spec.sites.size() == 2);
  for (const SiteSpec& site : spec.sites) {
    SiteSpec named = group;
    named.name = site.name;
    CHECK(site == named);
  }
}

TEST_CASE("lets a site override the [clients] worker group key by key") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml",
                                             "[clients]\ncount = 3\ndevices = [0, 1]\n"
                                             "max_restarts = 2\n"
                                             "[sites.site-2]\ndevices = 3\naccelerator = \"cpu\"\n"
                                             "[sites.site-3]\ndevices = \"auto\"\nnodes = 4\n"));
  const SiteSpec& one = spec.sites[0];
  const SiteSpec& two = spec.sites[1];
  const SiteSpec& three = spec.sites[2];
  CHECK(one.device_ids == std::vector<int>{0, 1});
  CHECK(one.devices == 2);
  CHECK(two.devices == 3);
  CHECK(two.device_ids.empty());  // a count replaces the ids it inherited
  CHECK(two.accelerator == "cpu");
  CHECK(two.max_restarts == 2);  // not overridden: inherited
  CHECK(three.devices_auto);
  CHECK(three.devices == 0);
  CHECK(three.device_ids.empty());
  CHECK(three.nodes == 4);
  CHECK(three.accelerator == "auto");
}

TEST_CASE("allows a multi-node group whose port is chosen at start") {
  const JobFolder folder;
  const JobSpec spec =
      load_job(folder.write_job("job.toml", "[clients]\nnodes = 2\nmaster_port = 0\n"));
  CHECK(spec.sites.front().nodes == 2);
  CHECK(spec.sites.front().master_port == 0);
}

TEST_CASE("takes worker-group overrides from the command line") {
  const JobFolder folder;
  const JobSpec spec =
      load_job(folder.write_job("job.toml", ""),
               {"clients.devices=auto", "sites.site-2.devices=[3]", "sites.site-2.backend=gloo",
                "clients.rendezvous_timeout_s=20", "sites.site-2.rendezvous_timeout_s=7.5"});
  CHECK(spec.sites[0].devices_auto);
  CHECK(spec.sites[0].rendezvous_timeout_s == 20);
  CHECK(spec.sites[1].device_ids == std::vector<int>{3});
  CHECK(spec.sites[1].backend == "gloo");
  CHECK(spec.sites[1].rendezvous_timeout_s == 7.5);
}

TEST_CASE("rejects a rendezvous timeout override that is not a positive number naming the --set") {
  const JobFolder folder;
  const auto job = folder.write_job("job.toml", "");
  CHECK_THROWS_WITH_AS(load_job(job, {"clients.rendezvous_timeout_s=0"}),
                       doctest::Contains("--set clients.rendezvous_timeout_s: expected a number "
                                         "of seconds from 0.001 to 604800 (7 days), found the "
                                         "integer 0"),
                       flare::jobspec::JobSpecError);
  CHECK_THROWS_WITH_AS(load_job(job, {"sites.site-1.rendezvous_timeout_s=soon"}),
                       doctest::Contains("--set sites.site-1.rendezvous_timeout_s: expected a "
                                         "number of seconds from 0.001 to 604800 (7 days), found "
                                         "the string \"soon\""),
                       flare::jobspec::JobSpecError);
}

TEST_CASE("rejects a devices value that is neither a count, a list of ids nor \"auto\"") {
  const std::string expected =
      "expected an integer from 1 to 4096, a list of distinct CUDA device ids or \"auto\"";
  CHECK(error_for("[clients]\ndevices = 4097\n") ==
        "job.toml:2: clients.devices: " + expected + ", found the integer 4097");
  CHECK(error_for("[clients]\ndevices = \"all\"\n") ==
        "job.toml:2: clients.devices: " + expected + ", found the string \"all\"");
  CHECK(error_for("[clients]\ndevices = []\n") ==
        "job.toml:2: clients.devices: " + expected + ", found an empty array");
  CHECK(error_for("[sites.site-2]\ndevices = 1.5\n") ==
        "job.toml:2: sites.site-2.devices: " + expected + ", found the number 1.5");
}

TEST_CASE("rejects a device id list with a negative, non-integer or repeated id") {
  CHECK(error_for("[clients]\ndevices = [0, -1]\n") ==
        "job.toml:2: clients.devices[1]: expected a CUDA device id (an integer >= 0), found the "
        "integer -1");
  CHECK(error_for("[clients]\ndevices = [\"0\"]\n") ==
        "job.toml:2: clients.devices[0]: expected a CUDA device id (an integer >= 0), found the "
        "string \"0\"");
  CHECK(error_for("[sites.site-1]\ndevices = [1, 0, 1]\n") ==
        "job.toml:2: sites.site-1.devices[2]: expected a CUDA device id not listed before, found "
        "the integer 1 twice");
}

TEST_CASE("rejects worker-group numbers out of range") {
  CHECK(error_for("[clients]\nnodes = 0\n") ==
        "job.toml:2: clients.nodes: expected an integer from 1 to 1024, found the integer 0");
  CHECK(error_for("[sites.site-1]\nnodes = 1025\n") ==
        "job.toml:2: sites.site-1.nodes: expected an integer from 1 to 1024, found the integer "
        "1025");
  CHECK(error_for("[clients]\nmaster_port = 65536\n") ==
        "job.toml:2: clients.master_port: expected an integer from 0 to 65535, found the integer "
        "65536");
  CHECK(error_for("[clients]\nmax_restarts = -1\n") ==
        "job.toml:2: clients.max_restarts: expected an integer from 0 to 1000, found the integer "
        "-1");
  CHECK(error_for("[clients]\nprogress_timeout_s = 0\n") ==
        "job.toml:2: clients.progress_timeout_s: expected a number of seconds from 0.001 to "
        "604800 (7 days), found the integer 0");
  CHECK(error_for("[clients]\nrendezvous_timeout_s = -5\n") ==
        "job.toml:2: clients.rendezvous_timeout_s: expected a number of seconds from 0.001 to "
        "604800 (7 days), found the integer -5");
  CHECK(error_for("[sites.site-2]\nrendezvous_timeout_s = \"5 s\"\n") ==
        "job.toml:2: sites.site-2.rendezvous_timeout_s: expected a number of seconds from 0.001 "
        "to 604800 (7 days), found the string \"5 s\"");
  CHECK(error_for("[clients]\nmaster_addr = \"\"\n") ==
        "job.toml:2: clients.master_addr: expected a non-empty string, found the string \"\"");
}

TEST_CASE("rejects an accelerator or backend outside its set") {
  CHECK(error_for("[clients]\naccelerator = \"gpu\"\n") ==
        "job.toml:2: clients.accelerator: expected one of \"auto\", \"cpu\", \"cuda\", found the "
        "string \"gpu\"");
  CHECK(error_for("[sites.site-1]\nbackend = \"mpi\"\n") ==
        "job.toml:2: sites.site-1.backend: expected one of \"auto\", \"gloo\", \"nccl\", found "
        "the string \"mpi\"");
  CHECK(error_for("[clients]\nbackend = 1\n") ==
        "job.toml:2: clients.backend: expected one of \"auto\", \"gloo\", \"nccl\", found the "
        "integer 1");
}

TEST_CASE("rejects NCCL on the CPU naming the key that made the conflict") {
  CHECK(error_for("[clients]\naccelerator = \"cpu\"\nbackend = \"nccl\"\n") ==
        "job.toml:3: clients.backend: expected \"auto\" or \"gloo\" with accelerator = \"cpu\" "
        "(NCCL runs on CUDA devices only), found \"nccl\"");
  CHECK(error_for("[clients]\nbackend = \"nccl\"\n[sites.site-2]\naccelerator = \"cpu\"\n") ==
        "job.toml:4: sites.site-2.accelerator: expected \"auto\" or \"cuda\" with backend = "
        "\"nccl\", found \"cpu\"");
}

TEST_CASE("rejects CUDA device ids on the CPU naming the key that made the conflict") {
  CHECK(error_for("[clients]\naccelerator = \"cpu\"\n[sites.site-1]\ndevices = [0]\n") ==
        "job.toml:4: sites.site-1.devices: expected a device count or \"auto\" with accelerator "
        "= \"cpu\" (ids name CUDA devices), found the device ids [0]");
  CHECK(error_for("[clients]\ndevices = [0, 1]\n[sites.site-1]\naccelerator = \"cpu\"\n") ==
        "job.toml:4: sites.site-1.accelerator: expected \"auto\" or \"cuda\" with devices = [0, "
        "1], found \"cpu\"");
}

TEST_CASE("exports every worker-group field so that an odd job loads back equal") {
  const JobFolder folder;
  const JobSpec spec = load_job(
      folder.write_job("job.toml",
                   "[clients]\ncount = 3\ndevices = \"auto\"\nbackend = \"gloo\"\n"
                   "progress_timeout_s = 0.25\n"
                   "[sites.site-1]\ndevices = [2, 0]\nnodes = 3\nmaster_port = 1234\n"
                   "master_addr = \"node-0.example\"\n"
                   "[sites.site-3]\ndevices = 5\naccelerator = \"cpu\"\nmax_restarts = 7\n"
                   "rendezvous_timeout_s = 2.5\n"));
  export_job(spec, folder.root() / "out");
  JobSpec loaded = load_job(folder.root() / "out/job.toml");
  loaded.source = spec.source;
  CHECK(loaded == spec);
}

TEST_CASE("writes every worker-group field of [clients] and of each site") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml", "[sites.site-2]\ndevices = [1]\n"));
  const toml::table doc = toml::parse(to_toml(spec));
  for (const auto group : {doc["clients"], doc["sites"]["site-1"]}) {
    CHECK(group["devices"].value<int64_t>() == 2);
    CHECK(group["accelerator"].value<std::string>() == "auto");
    CHECK(group["backend"].value<std::string>() == "auto");
    CHECK(group["nodes"].value<int64_t>() == 1);
    CHECK(group["master_addr"].value<std::string>() == "127.0.0.1");
    CHECK(group["master_port"].value<int64_t>() == 0);
    CHECK(group["max_restarts"].value<int64_t>() == 0);
    CHECK(group["progress_timeout_s"].value<double>() == 600.0);
    CHECK(group["rendezvous_timeout_s"].value<double>() == 300.0);
  }
  REQUIRE(doc["sites"]["site-2"]["devices"].is_array());
  CHECK(doc["sites"]["site-2"]["devices"][0].value<int64_t>() == 1);
}
