// The lines of one event of an audit trail (server/audit_log.hpp), parsed.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flare::testing {

inline std::vector<nlohmann::json> audit_lines(const std::filesystem::path& file,
                                               const std::string& event) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == event) lines.push_back(j);
  }
  return lines;
}

}  // namespace flare::testing
