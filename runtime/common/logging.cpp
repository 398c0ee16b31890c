#include "logging.hpp"

#include <deque>
#include <fstream>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "printable_text.hpp"

namespace flare::common {

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& tag) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [" + tag + "] %v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::shared_ptr<spdlog::logger> make_file_logger(const std::string& name,
                                                 const std::filesystem::path& file) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string());
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l [%n] %v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::string read_log_tail(const std::filesystem::path& file, int lines) {
  std::ifstream in(file);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(std::move(line));
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += l + "\n";
  // A log holds what plugins and sites wrote; it reaches terminals and reports.
  return printable(out, LineBreaks::Keep);
}

}  // namespace flare::common
