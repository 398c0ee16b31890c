#include "server/audit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "common/printable_text.hpp"
#include "common/sha256.hpp"

namespace flare::server {

namespace {

// A remote party's text, bounded: a claimed name of megabytes stays a line.
constexpr size_t kMaxRemoteText = 256;

std::string remote(const std::string& text) {
  std::string safe = common::printable(text.substr(0, kMaxRemoteText));
  if (text.size() > kMaxRemoteText) safe += "...";
  return safe;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return text;
}

nlohmann::json event(std::string_view name) {
  return {{"time", utc_now()}, {"event", name}};
}

}  // namespace

AuditLog::AuditLog(const std::filesystem::path& file) {
  fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw std::runtime_error("cannot open the audit log " + file.string() + ": " +
                             std::strerror(errno));
  ::fchmod(fd_, 0600);
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::write(const std::string& line) {
  // One write per line, O_APPEND: lines never interleave.
  const std::string text = line + "\n";
  if (::write(fd_, text.data(), text.size()) < 0) {
    // The audit is best effort against a full disk: the job goes on.
  }
}

void AuditLog::connection(const std::string& peer, const std::string& identity) {
  std::lock_guard lock(mutex_);
  // A long-running server meets many addresses; forget them now and then.
  if (peers_seen_.size() > 100000) peers_seen_.clear();
  if (!peers_seen_.insert(peer).second) return;
  auto e = event("connection");
  e["peer"] = remote(peer);
  e["identity"] = remote(identity);
  write(e.dump());
}

void AuditLog::handshake_refused(const std::string& certificate, std::string_view refusal,
                                 const std::string& reason) {
  auto e = event("handshake_refused");
  e["certificate"] = remote(certificate);
  e["refusal"] = refusal;
  e["reason"] = remote(reason);
  std::lock_guard lock(mutex_);
  write(e.dump());
}

void AuditLog::request_refused(std::string_view call, const std::string& peer,
                               const std::string& identity, const std::string& claimed_site,
                               const std::string& reason) {
  auto e = event("request_refused");
  e["call"] = call;
  e["peer"] = remote(peer);
  e["identity"] = remote(identity);
  e["claimed_site"] = remote(claimed_site);
  e["reason"] = remote(reason);
  std::lock_guard lock(mutex_);
  write(e.dump());
}

void AuditLog::model_accepted(std::string_view what, const std::string& site, int64_t round,
                              uint64_t bytes, const std::string& sha256) {
  auto e = event(std::string(what) + "_accepted");
  e["site"] = remote(site);
  if (round >= 0) e["round"] = round;
  e["bytes"] = bytes;
  e["sha256"] = sha256;
  std::lock_guard lock(mutex_);
  write(e.dump());
}

void AuditLog::admin_action(std::string_view action, const std::string& peer,
                            const std::string& identity, const std::string& job_id,
                            const std::string& detail) {
  auto e = event(action);
  e["peer"] = remote(peer);
  e["identity"] = remote(identity);
  e["job"] = remote(job_id);
  if (!detail.empty()) e["detail"] = remote(detail);
  std::lock_guard lock(mutex_);
  write(e.dump());
}

struct ReceivedDigest::State {
  common::Sha256 sha;
};

ReceivedDigest::ReceivedDigest() : state_(std::make_unique<State>()) {}

ReceivedDigest::~ReceivedDigest() = default;

void ReceivedDigest::add(std::string_view bytes) {
  state_->sha.update(bytes);
  bytes_ += bytes.size();
}

std::string ReceivedDigest::sha256_hex() { return common::to_hex(state_->sha.finish()); }

}  // namespace flare::server
