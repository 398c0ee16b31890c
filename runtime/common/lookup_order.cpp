#include "lookup_order.hpp"

#include <cstdlib>
#include <fstream>
#include <vector>

namespace flare::common {

std::string use_lookup_order(const std::filesystem::path& program) {
  const std::filesystem::path record = program.string() + ".lookup-order";
  std::ifstream in(record);
  if (!in) return "no " + record.string() + ": the default library order";
  std::vector<std::string> libraries;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::error_code error;
    // A path with a separator or a missing file: not what the build wrote.
    if (line.find_first_of(" :") != std::string::npos ||
        !std::filesystem::is_regular_file(line, error))
      return record.string() + " names " + line + ", not a library here: the default order";
    libraries.push_back(line);
  }
  if (libraries.empty()) return record.string() + " is empty: the default library order";
  std::string preload;
  if (const char* earlier = std::getenv("LD_PRELOAD"); earlier && *earlier) preload = earlier;
  for (const std::string& library : libraries) preload += (preload.empty() ? "" : " ") + library;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  return "libraries of " + program.filename().string() + " in the order of " + record.string() +
         " (" + std::to_string(libraries.size()) + ")";
}

}  // namespace flare::common
