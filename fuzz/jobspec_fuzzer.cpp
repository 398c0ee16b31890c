// libFuzzer target: TOML text -> validated job (jobspec::load_job_text), then
// the job's export read back, which must give the same export. JobSpecError is
// the loader's answer to bad input; anything else escaping, a sanitizer report,
// a hang or a job that does not survive its own export is a finding.
// Leading lines "#--set key.path=value" are --set overrides (TOML comments, so
// plain job files are seeds as they are).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "jobspec/job_spec.hpp"

namespace {

constexpr std::string_view kOverrideLine = "#--set ";

std::vector<std::string> leading_overrides(std::string_view text) {
  std::vector<std::string> overrides;
  while (text.starts_with(kOverrideLine)) {
    const auto end = text.find('\n');
    overrides.emplace_back(text.substr(kOverrideLine.size(), end - kOverrideLine.size()));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return overrides;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flare::jobspec;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::filesystem::path file = "/fuzz/jobs/job.toml";  // never opened
  JobSpec job;
  try {
    job = load_job_text(text, file, leading_overrides(text));
  } catch (const JobSpecError&) {
    return 0;
  }
  // to_toml promises a document load_job reads back to the same job: an error
  // here escapes on purpose. Compared as text, because a NaN in a plugin's
  // config never equals itself.
  const std::string exported = to_toml(job);
  const std::string again = to_toml(load_job_text(exported, file));
  if (again != exported) {
    std::fprintf(stderr, "export of the job does not read back the same:\n%s\n--- read back:\n%s\n",
                 exported.c_str(), again.c_str());
    std::abort();
  }
  return 0;
}
