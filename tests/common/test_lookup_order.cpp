// The library order a launcher gives flare-worker (cmake/lookup-order.sh
// records it at build time, common::use_lookup_order applies it).
#include "common/lookup_order.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

// A folder with a fake program beside its record, removed at scope exit.
struct Folder {
  fs::path dir = fs::temp_directory_path() / ("flare-test-lookup-" + std::to_string(::getpid()));
  Folder() { fs::create_directories(dir); }
  ~Folder() { fs::remove_all(dir); }
  fs::path program() const { return dir / "flare-worker"; }
  void record(const std::string& text) const {
    std::ofstream(program().string() + ".lookup-order") << text;
  }
  fs::path library(const std::string& name) const {
    std::ofstream(dir / name) << "not really a library";
    return dir / name;
  }
};

// LD_PRELOAD, restored at scope exit.
struct Preload {
  std::string saved;
  bool had = false;
  explicit Preload(const char* value) {
    if (const char* v = std::getenv("LD_PRELOAD")) saved = v, had = true;
    value ? ::setenv("LD_PRELOAD", value, 1) : ::unsetenv("LD_PRELOAD");
  }
  ~Preload() { had ? ::setenv("LD_PRELOAD", saved.c_str(), 1) : ::unsetenv("LD_PRELOAD"); }
  static std::string now() {
    const char* v = std::getenv("LD_PRELOAD");
    return v ? v : "(unset)";
  }
};

}  // namespace

TEST_CASE("without a record, or with an empty one, LD_PRELOAD stays as it was") {
  Folder folder;
  Preload preload(nullptr);
  CHECK(flare::common::use_lookup_order(folder.program()).find("no ") == 0);
  CHECK(Preload::now() == "(unset)");
  folder.record("\n");
  CHECK(flare::common::use_lookup_order(folder.program()).find("is empty") != std::string::npos);
  CHECK(Preload::now() == "(unset)");
}

TEST_CASE("a record naming a library that is gone is ignored, naming it") {
  Folder folder;
  Preload preload("libuser.so");
  const auto a = folder.library("liba.so.1");
  folder.record(a.string() + "\n" + (folder.dir / "libgone.so.2").string() + "\n");
  const auto said = flare::common::use_lookup_order(folder.program());
  CHECK(said.find("libgone.so.2") != std::string::npos);
  CHECK(Preload::now() == "libuser.so");
}

TEST_CASE("a record's libraries are preloaded in its order, after the user's own preload") {
  Folder folder;
  Preload preload("libuser.so");
  const auto a = folder.library("liba.so.1"), b = folder.library("libb.so.2");
  folder.record(b.string() + "\n" + a.string() + "\n");
  const auto said = flare::common::use_lookup_order(folder.program());
  CHECK(said.find("(2)") != std::string::npos);
  CHECK(Preload::now() == "libuser.so " + b.string() + " " + a.string());
}

#ifdef FLARE_WORKER_PROGRAM
namespace {

// "file|symbol" -> provider for every C symbol flare-worker binds at start
// (LD_BIND_NOW: all of them), as the dynamic linker reports them.
std::map<std::string, std::string> c_bindings(const std::string& preload) {
  const std::string command = "LD_PRELOAD='" + preload +
                              "' LD_BIND_NOW=1 LD_DEBUG=bindings " FLARE_WORKER_PROGRAM
                              " </dev/null 2>&1 >/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::map<std::string, std::string> bound;
  char line[4096];
  while (std::fgets(line, sizeof(line), pipe)) {
    std::istringstream words(line);
    std::string pid, binding, file_word, file, slot, to, provider;
    if (!(words >> pid >> binding >> file_word >> file >> slot >> to >> provider) ||
        binding != "binding")
      continue;
    const std::string text(line);
    const auto open = text.find('`'), close = text.find('\'', open + 1);
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::string symbol = text.substr(open + 1, close - open - 1);
    if (symbol.rfind("_Z", 0) == 0) continue;  // C++ vague linkage: any copy is the same
    bound[file + "|" + symbol] = provider;
  }
  ::pclose(pipe);
  return bound;
}

}  // namespace

TEST_CASE("the recorded order binds every C symbol of flare-worker where the default order does") {
  std::ifstream in(FLARE_WORKER_PROGRAM ".lookup-order");
  REQUIRE_MESSAGE(in, "the build writes " FLARE_WORKER_PROGRAM ".lookup-order");
  std::string preload;
  for (std::string line; std::getline(in, line);) preload += (preload.empty() ? "" : " ") + line;
  REQUIRE_MESSAGE(!preload.empty(), "the build found no order that binds alike (see its log)");
  const auto before = c_bindings(""), after = c_bindings(preload);
  REQUIRE(before.size() > 1000);  // LibTorch's libraries were traced
  int moved = 0;
  std::string examples;
  for (const auto& [reference, provider] : before) {
    const auto it = after.find(reference);
    if (it != after.end() && it->second != provider && ++moved <= 3)
      examples += "\n  " + reference + ": " + provider + " -> " + it->second;
  }
  CHECK_MESSAGE(moved == 0, moved << " bindings moved, e.g." << examples);
  CHECK(after.size() == before.size());
}
#endif
