// Bad input is refused with exit 2 before anything starts, naming the key:
// the cifar10 trainer's config and data (its validate_config, run in
// flare-run's plugin check), the server's address.
#include <doctest/doctest.h>

#include "cifar_format.hpp"
#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

// A cifar10 job on generated data in `dir`, with `trainer_config` in [trainer.config].
fs::path cifar10_job(const TempFolder& dir, const std::string& trainer_config) {
  flare::cifar::generate_synthetic_cifar(dir.path() / "data",
                                         {.train_images = 50, .test_images = 10, .seed = 1});
  write_text(dir.path() / "job.toml",
             "[job]\nname = \"e2e-input\"\nnum_rounds = 1\nworkspace = \"ws\"\n"
             "[clients]\ncount = 2\ndevices = 1\n[data]\ndir = \"data\"\n"
             "[trainer]\nplugin = \"cifar10\"\n[trainer.config]\n" + trainer_config +
             "\n[aggregator]\nplugin = \"fedavg\"\n");
  return dir.path() / "job.toml";
}

}  // namespace

TEST_CASE("a bad trainer config exits 2 before any process starts, naming the key and option") {
  TempFolder dir;
  const fs::path job = cifar10_job(dir, "lr = \"fast\"");
  const auto r = run_command({FLARE_RUN_BIN, job.string()}, 120);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  // The text is the contract: the file, the key, the plugin and the option.
  CHECK(mentions(r.output, job.string() + ": trainer.config: plugin 'cifar10'"));
  CHECK(mentions(r.output, "option 'lr'"));
  // No run folder: the sites start after it is made. Each worker used to
  // refuse the config about 5 s after it started.
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}

TEST_CASE("a truncated data file exits 2 before any process starts, naming data.dir") {
  TempFolder dir;
  const fs::path job = cifar10_job(dir, "");
  fs::resize_file(dir.path() / "data/data_batch_2.bin", flare::cifar::kRecordBytes + 1);
  const auto r = run_command({FLARE_RUN_BIN, job.string()}, 120);
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(mentions(r.output, job.string() + ": data.dir: plugin 'cifar10'"));
  CHECK(mentions(r.output, "data_batch_2.bin"));
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}

TEST_CASE("a server host that is no address of this machine exits 2 with that as its first line") {
  TempFolder dir;
  const fs::path job = cifar10_job(dir, "");
  const auto r =
      run_command({FLARE_RUN_BIN, job.string(), "--set", "server.host=no-such-host.invalid"}, 60);
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.output.starts_with("flare-run: " + job.string() + ": server.host: "), r.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}
