#include <fstream>
#include <iterator>
#include <system_error>

#include "document.hpp"
#include "job_spec.hpp"
#include "overrides.hpp"
#include "read_job.hpp"

namespace flare::jobspec {
namespace {

std::string read_file(const std::filesystem::path& file) {
  std::error_code error;
  const auto status = std::filesystem::status(file, error);
  if (!std::filesystem::exists(status))
    throw JobSpecError(file.string() + ": expected a job file, found no file at that path");
  if (std::filesystem::is_directory(status))
    throw JobSpecError(file.string() + ": expected a job file, found a directory");
  std::ifstream in(file, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in || in.bad())
    throw JobSpecError(file.string() +
                       ": expected a readable job file, found one that cannot be read");
  return text;
}

toml::table parse(std::string_view text, const std::filesystem::path& file) {
  try {
    return toml::parse(text, file.string());
  } catch (const toml::parse_error& error) {
    const auto& at = error.source().begin;
    throw JobSpecError(file.string() + ":" + std::to_string(at.line) + ":" +
                       std::to_string(at.column) +
                       ": invalid TOML: " + std::string(error.description()));
  }
}

JobSpec read_text(std::vector<toml::table> parsed_overrides, std::string_view text,
                  const std::filesystem::path& file) {
  toml::table root = parse(text, file);
  apply_overrides(root, std::move(parsed_overrides));
  return read_job(root, Document(file));
}

}  // namespace

JobSpec load_job(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  // A malformed --set is a usage mistake: reported before the file is read.
  std::vector<toml::table> parsed_overrides = parse_overrides(overrides);
  return read_text(std::move(parsed_overrides), read_file(file), file);
}

JobSpec load_job_text(std::string_view text, const std::filesystem::path& file,
                      const std::vector<std::string>& overrides) {
  return read_text(parse_overrides(overrides), text, file);
}

}  // namespace flare::jobspec
