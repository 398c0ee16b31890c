#include "deploy/deploy_services.hpp"

#include <algorithm>
#include <fstream>

#include "common/printable_text.hpp"
#include "deploy/job_folder.hpp"
#include "server/peer_admission.hpp"

namespace flare::deploy {

namespace v1 = flare::deploy::v1;

namespace {

// Files stream in parts of this size: no message limit caps a model.
constexpr size_t kFilePart = 4 << 20;

// A request its caller may not make; answered PERMISSION_DENIED.
struct Refused {
  std::string reason;
};

grpc::Status denied(const Refused& r) {
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, r.reason);
}

// Streams `file` as FileChunks named `name`.
grpc::Status stream_file(const std::filesystem::path& file, const std::string& name,
                         grpc::ServerWriter<v1::FileChunk>* writer) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return grpc::Status(grpc::StatusCode::NOT_FOUND, name + " cannot be read");
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  v1::FileChunk chunk;
  chunk.set_name(name);
  chunk.set_total_bytes(ec ? 0 : size);
  std::string buffer(kFilePart, '\0');
  bool first = true;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0 && !first) break;
    chunk.set_data(buffer.data(), got);
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    chunk.clear_name();
    first = false;
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status JobDeskService::NextJob(grpc::ServerContext* context, const v1::JobPoll* poll,
                                     v1::JobOffer* offer) {
  const auto id = server::peer_identity(*context);
  if (audit_) audit_->connection(context->peer(), server::identity_text(id));
  std::string why;
  if (!id || id->role != identity::Role::site)
    why = "only a site may ask for jobs; the caller is " + server::identity_text(id);
  else if (std::find(settings_.project_sites.begin(), settings_.project_sites.end(), id->name) ==
           settings_.project_sites.end())
    why = "site '" + id->name + "' is not a site of this project";
  else if (poll->node_rank() < 0 || poll->node_rank() > 4096)
    why = "node rank " + std::to_string(poll->node_rank()) + " is out of range";
  if (!why.empty()) {
    if (audit_)
      audit_->request_refused("NextJob", context->peer(), server::identity_text(id), id ? id->name : "",
                              why);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
  }
  const std::set<std::string> running(poll->running_jobs().begin(), poll->running_jobs().end());
  if (const auto job = table_.poll(id->name, poll->node_rank(), running, settings_.poll_wait)) {
    offer->set_job_id(job->job_id);
    offer->set_job_toml(job->job_toml);
    offer->set_port(job->port);
  }
  return grpc::Status::OK;
}

AdminService::Caller AdminService::authorize(grpc::ServerContext* context, const char* call,
                                             Action action, const JobRecord* job) const {
  const auto id = server::peer_identity(*context);
  if (audit_) audit_->connection(context->peer(), server::identity_text(id));
  std::string why;
  Caller caller;
  if (!id || id->role != identity::Role::admin) {
    why = "only an admin may call " + std::string(call) + "; the caller is " + server::identity_text(id);
  } else if (!settings_.admin_roles.count(id->name)) {
    why = "'" + id->name + "' is not an admin of this project (the server's local.toml)";
  } else {
    caller = {id->name, settings_.admin_roles.at(id->name)};
    const bool all = caller.role == "project_admin";
    const bool lead = caller.role == "lead";
    const bool own = job && job->submitted_by == caller.name;
    if (action == Action::submit && !all && !lead)
      why = "role " + caller.role + " may not submit jobs";
    else if (action == Action::manage && !all && !(lead && own))
      why = "role " + caller.role + (lead ? " may only act on its own jobs" : " may only list jobs");
  }
  if (!why.empty()) {
    if (audit_)
      audit_->request_refused(call, context->peer(), server::identity_text(id), job ? job->id : "", why);
    throw Refused{why};
  }
  return caller;
}

JobRecord AdminService::existing_job(grpc::ServerContext* context, const char* call,
                                     const std::string& id) const {
  if (auto job = table_.find(id)) return *job;
  // Authorize first so an outsider learns nothing of which jobs exist.
  authorize(context, call, Action::list, nullptr);
  throw grpc::Status(grpc::StatusCode::NOT_FOUND, "no job '" + common::printable(id) + "'");
}

void AdminService::fill_summary(const JobRecord& job, v1::JobSummary* s) const {
  s->set_job_id(job.id);
  s->set_name(job.name);
  s->set_state(std::string(state_name(job.state)));
  s->set_rounds_done(job.state == JobState::queued
                         ? 0
                         : rounds_done(JobFolder(settings_.jobs_dir / job.id), job.sites.size()));
  s->set_num_rounds(job.num_rounds);
  for (const auto& site : job.sites) s->add_sites(site);
  s->set_failure(job.failure);
  s->set_submitted_by(job.submitted_by);
  s->set_submitted_at(job.submitted_at);
  s->set_started_at(job.started_at);
  s->set_ended_at(job.ended_at);
  if (job.state == JobState::queued) s->set_waiting_for(table_.waiting_for(job.id));
  s->set_port(job.state == JobState::running ? job.port : 0);
  if (job.resumed_after_round >= 0) s->set_resumed_after_round(job.resumed_after_round);
}

grpc::Status AdminService::SubmitJob(grpc::ServerContext* context,
                                     const v1::JobSubmission* request, v1::JobSummary* summary) {
  try {
    const auto caller = authorize(context, "SubmitJob", Action::submit, nullptr);
    JobRecord job;
    try {
      job = check_submission(request->job_toml(), request->file_name(), settings_.server);
    } catch (const SubmissionError& e) {
      if (audit_)
        audit_->request_refused("SubmitJob", context->peer(), "admin/" + caller.name, "",
                                e.what());
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    }
    job.id = table_.reserve_id();
    job.submitted_by = caller.name;
    job.submitted_at = now_seconds();
    create_job_folder(JobFolder(settings_.jobs_dir / job.id), job);
    job = table_.add(std::move(job));
    if (audit_)
      audit_->admin_action("job_submitted", context->peer(), "admin/" + caller.name, job.id,
                           job.name);
    fill_summary(job, summary);
    return grpc::Status::OK;
  } catch (const Refused& r) {
    return denied(r);
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "the server could not store the job: " + std::string(e.what()));
  }
}

grpc::Status AdminService::ListJobs(grpc::ServerContext* context, const v1::JobRef* request,
                                    v1::JobList* list) {
  try {
    authorize(context, "ListJobs", Action::list, nullptr);
    bool found = false;
    for (const auto& job : table_.list()) {
      if (!request->job_id().empty() && job.id != request->job_id()) continue;
      fill_summary(job, list->add_jobs());
      found = true;
    }
    if (!request->job_id().empty() && !found)
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no job '" + common::printable(request->job_id()) + "'");
    return grpc::Status::OK;
  } catch (const Refused& r) {
    return denied(r);
  }
}

grpc::Status AdminService::AbortJob(grpc::ServerContext* context, const v1::JobRef* request,
                                    v1::JobSummary* summary) {
  try {
    const auto job = existing_job(context, "AbortJob", request->job_id());
    const auto caller = authorize(context, "AbortJob", Action::manage, &job);
    std::string why;
    const auto aborted =
        table_.request_abort(job.id, "aborted by admin " + caller.name, why);
    if (!aborted) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why);
    if (audit_)
      audit_->admin_action("job_aborted", context->peer(), "admin/" + caller.name, job.id, "");
    fill_summary(*aborted, summary);
    return grpc::Status::OK;
  } catch (const Refused& r) {
    return denied(r);
  } catch (const grpc::Status& status) {
    return status;
  }
}

grpc::Status AdminService::GetMetrics(grpc::ServerContext* context, const v1::JobRef* request,
                                      grpc::ServerWriter<v1::FileChunk>* writer) {
  try {
    const auto job = existing_job(context, "GetMetrics", request->job_id());
    authorize(context, "GetMetrics", Action::manage, &job);
    const JobFolder folder(settings_.jobs_dir / job.id);
    if (!std::filesystem::exists(folder.metrics_file()))
      return grpc::Status(grpc::StatusCode::NOT_FOUND, job.id + " has no metrics yet (" +
                                                           std::string(state_name(job.state)) +
                                                           ")");
    return stream_file(folder.metrics_file(), "metrics.jsonl", writer);
  } catch (const Refused& r) {
    return denied(r);
  } catch (const grpc::Status& status) {
    return status;
  }
}

grpc::Status AdminService::DownloadModel(grpc::ServerContext* context,
                                         const v1::ModelRequest* request,
                                         grpc::ServerWriter<v1::FileChunk>* writer) {
  try {
    const auto job = existing_job(context, "DownloadModel", request->job_id());
    const auto caller = authorize(context, "DownloadModel", Action::manage, &job);
    std::filesystem::path file;
    try {
      file = model_file(JobFolder(settings_.jobs_dir / job.id),
                        request->which().empty() ? "final" : request->which());
    } catch (const std::invalid_argument& e) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
    } catch (const std::out_of_range& e) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, job.id + ": " + e.what());
    }
    if (audit_)
      audit_->admin_action("model_downloaded", context->peer(), "admin/" + caller.name, job.id,
                           file.filename().string());
    return stream_file(file, file.filename().string(), writer);
  } catch (const Refused& r) {
    return denied(r);
  } catch (const grpc::Status& status) {
    return status;
  }
}

}  // namespace flare::deploy
