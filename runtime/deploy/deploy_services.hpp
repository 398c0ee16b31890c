// The long-running server's gRPC services on its main port (deploy.proto):
// the sites' job desk and the admins' service. Who calls is the verified
// certificate's identity; a site polls only as itself, and an admin may do
// what its role in the server's local.toml allows:
//   project_admin  everything, on every job
//   lead           submit; abort, metrics and download of its own jobs; list
//   member, org_admin  list only
// Every refusal, and every submission, abort and download, is in the audit.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "deploy/job_submission.hpp"
#include "deploy/job_table.hpp"
#include "server/audit_log.hpp"
#include "transport/deploy.grpc.pb.h"

namespace flare::deploy {

struct DeskSettings {
  std::vector<std::string> project_sites;
  std::chrono::milliseconds poll_wait{5000};  // a NextJob answers empty after this long
};

class JobDeskService final : public deploy::v1::JobDesk::Service {
 public:
  JobDeskService(JobTable& table, server::AuditLog* audit, DeskSettings settings)
      : table_(table), audit_(audit), settings_(std::move(settings)) {}
  grpc::Status NextJob(grpc::ServerContext* context, const deploy::v1::JobPoll* poll,
                       deploy::v1::JobOffer* offer) override;

 private:
  JobTable& table_;
  server::AuditLog* audit_;
  DeskSettings settings_;
};

struct AdminSettings {
  std::map<std::string, std::string> admin_roles;  // admin name -> role
  ServerSide server;
  std::filesystem::path jobs_dir;  // <workspace>/jobs
};

class AdminService final : public deploy::v1::Admin::Service {
 public:
  AdminService(JobTable& table, server::AuditLog* audit, AdminSettings settings)
      : table_(table), audit_(audit), settings_(std::move(settings)) {}
  grpc::Status SubmitJob(grpc::ServerContext*, const deploy::v1::JobSubmission*,
                         deploy::v1::JobSummary*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const deploy::v1::JobRef*,
                        deploy::v1::JobList*) override;
  grpc::Status AbortJob(grpc::ServerContext*, const deploy::v1::JobRef*,
                        deploy::v1::JobSummary*) override;
  grpc::Status GetMetrics(grpc::ServerContext*, const deploy::v1::JobRef*,
                          grpc::ServerWriter<deploy::v1::FileChunk>*) override;
  grpc::Status DownloadModel(grpc::ServerContext*, const deploy::v1::ModelRequest*,
                             grpc::ServerWriter<deploy::v1::FileChunk>*) override;

 private:
  enum class Action { list, submit, manage };  // manage: abort, metrics, download
  struct Caller {
    std::string name, role;
  };
  // The caller, if it may take `action` (on `job`, when one is named);
  // throws Refused, audited.
  Caller authorize(grpc::ServerContext* context, const char* call, Action action,
                   const JobRecord* job) const;
  JobRecord existing_job(grpc::ServerContext* context, const char* call,
                         const std::string& id) const;
  void fill_summary(const JobRecord& job, deploy::v1::JobSummary* summary) const;

  JobTable& table_;
  server::AuditLog* audit_;
  AdminSettings settings_;
};

}  // namespace flare::deploy
