// The server's audit trail (<run>/logs/audit.jsonl, owner-only): one JSON
// line per event, so who did what can be read back after the fact: each
// connection's verified identity and peer address, each refused handshake and
// request with its reason, each model accepted with its size and SHA-256.
// Text a remote party chose (a claimed name, a certificate's subject) is made
// printable and bounded before it is written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace flare::server {

// What the audit says of the caller: "site/site-1" from its certificate, or
// "unauthenticated" on a plaintext port.
inline constexpr std::string_view kUnauthenticated = "unauthenticated";

class AuditLog {
 public:
  // Appends to `file`, created owner-only (0600); throws naming it.
  explicit AuditLog(const std::filesystem::path& file);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // The first request from `peer` (gRPC's "ipv4:127.0.0.1:5000"): once per address.
  void connection(const std::string& peer, const std::string& identity);
  // `certificate`: the identity it claims (or its CN); `refusal`: the kind
  // (identity::refusal_name: "expired", "revoked", "other_ca", ..., or
  // "no_certificate"); `reason`: in words.
  void handshake_refused(const std::string& certificate, std::string_view refusal,
                         const std::string& reason);
  void request_refused(std::string_view call, const std::string& peer, const std::string& identity,
                       const std::string& claimed_site, const std::string& reason);
  // `what`: "update" or "initial_model"; round -1 for an initial model.
  void model_accepted(std::string_view what, const std::string& site, int64_t round,
                      uint64_t bytes, const std::string& sha256);
  // An admin's request that was carried out (the long-running server's
  // "job_submitted", "job_aborted", "model_downloaded", ...).
  void admin_action(std::string_view action, const std::string& peer, const std::string& identity,
                    const std::string& job_id, const std::string& detail);

 private:
  void write(const std::string& line);

  std::mutex mutex_;
  int fd_ = -1;
  std::unordered_set<std::string> peers_seen_;
};

// The SHA-256 and size of a model's bytes as they arrive, part by part.
class ReceivedDigest {
 public:
  ReceivedDigest();
  ~ReceivedDigest();
  ReceivedDigest(const ReceivedDigest&) = delete;
  ReceivedDigest& operator=(const ReceivedDigest&) = delete;
  void add(std::string_view bytes);
  uint64_t bytes() const { return bytes_; }
  std::string sha256_hex();  // once, at the end

 private:
  struct State;
  std::unique_ptr<State> state_;
  uint64_t bytes_ = 0;
};

}  // namespace flare::server
