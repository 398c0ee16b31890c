#include "admin/job_display.hpp"

#include <algorithm>
#include <ctime>

#include "common/printable_text.hpp"

namespace flare::admin {

namespace {

std::string sites_text(const deploy::v1::JobSummary& job) {
  std::string text;
  for (const auto& site : job.sites()) text += (text.empty() ? "" : ", ") + site;
  return common::printable(text);
}

std::string rounds_text(const deploy::v1::JobSummary& job) {
  return std::to_string(job.rounds_done()) + "/" + std::to_string(job.num_rounds());
}

bool was_resumed(const deploy::v1::JobSummary& job) { return job.has_resumed_after_round(); }

std::string resumed_text(const deploy::v1::JobSummary& job) {
  return "resumed after round " + std::to_string(job.resumed_after_round());
}

std::string utc_time(double seconds) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

}  // namespace

std::string job_table(const std::vector<deploy::v1::JobSummary>& jobs) {
  if (jobs.empty()) return "no jobs\n";
  std::vector<std::vector<std::string>> rows{{"ID", "NAME", "STATE", "ROUNDS", "SITES"}};
  for (const auto& job : jobs)
    rows.push_back({common::printable(job.job_id()), common::printable(job.name()),
                    common::printable(job.state()) +
                        (was_resumed(job) ? " (" + resumed_text(job) + ")" : ""),
                    rounds_text(job), sites_text(job)});
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string job_details(const deploy::v1::JobSummary& job) {
  std::string out;
  const auto field = [&out](const std::string& name, const std::string& value) {
    constexpr std::size_t kValueColumn = 14;  // the longest name, "waiting for: ", fits
    out += name + ":" + std::string(kValueColumn - 1 - std::min(kValueColumn - 2, name.size()), ' ') +
           value + "\n";
  };
  field("job", common::printable(job.job_id()));
  field("name", common::printable(job.name()));
  field("state", common::printable(job.state()) +
                     (was_resumed(job) ? " (" + resumed_text(job) + ")" : ""));
  field("rounds", std::to_string(job.rounds_done()) + " of " + std::to_string(job.num_rounds()));
  field("sites", sites_text(job));
  field("submitted", utc_time(job.submitted_at()) + " by " + common::printable(job.submitted_by()));
  if (job.started_at() > 0) field("started", utc_time(job.started_at()));
  if (job.ended_at() > 0) field("ended", utc_time(job.ended_at()));
  if (!job.waiting_for().empty()) field("waiting for", common::printable(job.waiting_for()));
  if (job.port() > 0) field("port", std::to_string(job.port()));
  if (!job.failure().empty()) field("failure", common::printable(job.failure()));
  return out;
}

bool job_is_over(const deploy::v1::JobSummary& job) {
  return job.state() == "finished" || job.state() == "failed" || job.state() == "aborted";
}

}  // namespace flare::admin
