#include "e2e_support.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

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

TimedRun run_timed(const std::vector<std::string>& args, int timeout_s) {
  const auto started = std::chrono::steady_clock::now();
  TimedRun run;
  run.result = run_command(args, timeout_s);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return run;
}

bool mentions(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
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

std::vector<nlohmann::json> lines_of_kind(const fs::path& run, const std::string& kind) {
  std::vector<nlohmann::json> lines;
  for (auto& line : read_json_lines(run / "metrics.jsonl"))
    if (line.value("kind", "") == kind) lines.push_back(std::move(line));
  return lines;
}

int failures_matching(const fs::path& run, const nlohmann::json& fields) {
  int found = 0;
  for (const auto& line : lines_of_kind(run, "failure")) {
    bool all = true;
    for (const auto& [key, want] : fields.items()) {
      if (key != "cause") {
        all = all && line.contains(key) && line[key] == want;
        continue;
      }
      for (const auto& [part, value] : want.items())
        all = all && line[key].contains(part) && line[key][part] == value;
    }
    found += all;
  }
  return found;
}

nlohmann::json job_line(const fs::path& run) {
  const auto lines = lines_of_kind(run, "job");
  return lines.size() == 1 ? lines.front() : nlohmann::json();
}

std::vector<int> processes_with(const std::vector<std::string>& arguments) {
  std::vector<int> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = command_line(entry.path());
    bool all = !cmdline.empty();
    for (const auto& a : arguments) all = all && cmdline.find(a) != std::string::npos;
    if (all) pids.push_back(std::stoi(name));
  }
  return pids;
}

std::vector<int> processes_mentioning(const std::string& needle) { return processes_with({needle}); }

// With read(2), not a stream: a process that exits between the listing of
// /proc and the read makes the read fail (ESRCH), which libstdc++'s filebuf
// threw as an exception out of a check that only asked who is left.
std::string command_line(const fs::path& proc_entry) {
  const int fd = ::open((proc_entry / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return n < 0 ? std::string() : text;
}

int occurrences(const fs::path& file, const std::string& text) {
  std::ifstream in(file);
  const std::string content((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
  int found = 0;
  for (auto at = content.find(text); at != std::string::npos; at = content.find(text, at + 1))
    ++found;
  return found;
}

bool wait_for_text(const fs::path& file, const std::string& text, int count, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (occurrences(file, text) < count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

fs::path flare_run_with_node_down(const fs::path& dir, int node) {
  // flare-run starts the flare-client beside it, and finds plugins in ../plugins.
  const fs::path real = fs::path(FLARE_RUN_BIN).parent_path();
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  fs::copy_file(real / "flare-run", bin / "flare-run", fs::copy_options::overwrite_existing);
  fs::create_symlink(real / "flare-worker", bin / "flare-worker");
  fs::create_directory_symlink(real.parent_path() / "plugins", dir / "plugins");
  write_text(bin / "flare-client",
             "#!/bin/sh\n"
             "case \" $* \" in *\" --node-rank " + std::to_string(node) + " \"*)\n"
             "  trap 'exit 0' TERM\n"
             "  while :; do sleep 0.1; done ;;\n"
             "esac\n"
             "exec " + quote((real / "flare-client").string()) + " \"$@\"\n");
  for (const char* program : {"flare-run", "flare-client"})
    fs::permissions(bin / program, fs::perms::owner_all, fs::perm_options::add);
  return bin / "flare-run";
}

std::string c_trainer_job(const fs::path& workspace, int rounds, const std::string& trainer_config,
                          const std::string& worker_group, int sites,
                          const std::string& aggregator) {
  return "[job]\nname = \"c-counter\"\nnum_rounds = " + std::to_string(rounds) +
         "\nworkspace = \"" + workspace.string() + "\"\n[clients]\ncount = " +
         std::to_string(sites) + "\n" + worker_group +
         "\n[data]\ndir = \".\"\n"
         "[trainer]\npath = \"" FLARE_C_TRAINER "\"\n[trainer.config]\n" +
         trainer_config +
         "\n[aggregator]\n" + aggregator + "\n[server]\nkey_metric = \"val_acc\"\n";
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
