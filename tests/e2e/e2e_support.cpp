#include "e2e_support.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <sys/wait.h>

#include "storage/safetensors.hpp"

namespace flare::e2e {

namespace fs = std::filesystem;

namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& args, int timeout_s) {
  const fs::path out = fs::temp_directory_path() /
                       ("flare-e2e-out-" + std::to_string(std::random_device{}()) + ".txt");
  std::string cmd = "timeout -k 5 " + std::to_string(timeout_s);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " > " + quote(out.string()) + " 2>&1 < /dev/null";
  const int raw = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  r.output = text.str();
  fs::remove(out);
  return r;
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
}

std::vector<nlohmann::json> read_json_lines(const fs::path& file) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

std::string c_trainer_job(const fs::path& workspace, int rounds, const std::string& trainer_config,
                          const std::string& worker_group, int sites) {
  return "[job]\nname = \"c-counter\"\nnum_rounds = " + std::to_string(rounds) +
         "\nworkspace = \"" + workspace.string() + "\"\n[clients]\ncount = " +
         std::to_string(sites) + "\n" + worker_group +
         "\n[data]\ndir = \".\"\n"
         "[trainer]\npath = \"" FLARE_C_TRAINER "\"\n[trainer.config]\n" +
         trainer_config +
         "\n[aggregator]\nplugin = \"fedavg\"\n[server]\nkey_metric = \"val_acc\"\n";
}

float first_weight(const fs::path& model) {
  const auto file = storage::load_safetensors(model);
  if (file.tensors.size() != 1)
    throw std::runtime_error(model.string() + ": expected one tensor, found " +
                             std::to_string(file.tensors.size()));
  float w = 0;
  std::memcpy(&w, file.tensors[0].data.data(), sizeof(w));
  return w;
}

}  // namespace flare::e2e
