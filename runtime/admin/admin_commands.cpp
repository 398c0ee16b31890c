#include "admin/admin_commands.hpp"

#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "admin/job_display.hpp"
#include "common/printable_text.hpp"
#include "deploy_client/deploy_channel.hpp"
#include "storage/atomic_file.hpp"

namespace flare::admin {

namespace {

namespace v1 = deploy::v1;
using Clock = std::chrono::steady_clock;

constexpr auto kCallDeadline = std::chrono::seconds(30);
constexpr auto kWaitPollInterval = std::chrono::seconds(1);

// A call the server refused or could not be made; the message says why.
class CallFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void check(const grpc::Status& status, const std::string& what) {
  if (!status.ok())
    throw CallFailed(what + " failed: " + deploy_client::describe_failure(status));
}

std::unique_ptr<grpc::ClientContext> unary_call() {
  auto call = std::make_unique<grpc::ClientContext>();
  call->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  return call;
}

v1::JobSummary find_job(v1::Admin::StubInterface& server, const std::string& job_id) {
  v1::JobRef ref;
  ref.set_job_id(job_id);
  v1::JobList list;
  check(server.ListJobs(unary_call().get(), ref, &list), "asking for job " + job_id);
  for (const auto& job : list.jobs())
    if (job.job_id() == job_id) return job;
  throw CallFailed("the server knows no job " + common::printable(job_id));
}

// Reads a FileChunk stream, handing each part's bytes to `write`; throws
// when the call fails or the stream ends before the size it announced.
template <class Write>
uint64_t receive_file(grpc::ClientReaderInterface<v1::FileChunk>& reader, const std::string& what,
                      Write&& write) {
  v1::FileChunk chunk;
  uint64_t total = 0, received = 0;
  bool first = true;
  while (reader.Read(&chunk)) {
    if (first) total = chunk.total_bytes();
    first = false;
    received += chunk.data().size();
    write(chunk.data());
  }
  check(reader.Finish(), what);
  if (received != total)
    throw CallFailed(what + ": the stream ended after " + std::to_string(received) + " of " +
                     std::to_string(total) + " bytes; nothing was written");
  return received;
}

int wait_for_end(v1::Admin::StubInterface& server, const std::string& job_id,
                 std::optional<double> timeout_s, std::ostream& out) {
  const auto began = Clock::now();
  std::string last_state;
  for (;;) {
    const auto job = find_job(server, job_id);
    if (job.state() != last_state) {
      last_state = job.state();
      out << "job " << common::printable(job_id) << ": " << common::printable(last_state);
      if (!job.waiting_for().empty()) out << " (waiting for " << common::printable(job.waiting_for()) << ")";
      out << std::endl;
    }
    if (job_is_over(job)) {
      if (job.state() == "finished") {
        out << "rounds: " << job.rounds_done() << " of " << job.num_rounds() << "\n";
        return 0;
      }
      out << "failure: " << common::printable(job.failure()) << "\n";
      return 1;
    }
    const std::chrono::duration<double> waited = Clock::now() - began;
    if (timeout_s && waited.count() >= *timeout_s) {
      out << "job " << common::printable(job_id) << " is still " << common::printable(last_state)
          << " after " << *timeout_s << " s\n";
      return 1;
    }
    std::this_thread::sleep_for(kWaitPollInterval);
  }
}

std::string read_job_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read the job file " + file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int submit(const AdminCommand& c, v1::Admin::StubInterface& server, std::ostream& out) {
  v1::JobSubmission submission;
  submission.set_job_toml(read_job_file(c.target));
  submission.set_file_name(std::filesystem::path(c.target).filename().string());
  v1::JobSummary job;
  check(server.SubmitJob(unary_call().get(), submission, &job), "submitting " + c.target);
  out << "submitted job " << common::printable(job.job_id()) << " ("
      << common::printable(job.name()) << "): " << common::printable(job.state()) << std::endl;
  return c.wait ? wait_for_end(server, job.job_id(), c.timeout_s, out) : 0;
}

int list(v1::Admin::StubInterface& server, std::ostream& out) {
  v1::JobList list;
  check(server.ListJobs(unary_call().get(), v1::JobRef(), &list), "listing the jobs");
  out << job_table({list.jobs().begin(), list.jobs().end()});
  return 0;
}

int abort_job(const AdminCommand& c, v1::Admin::StubInterface& server, std::ostream& out) {
  v1::JobRef ref;
  ref.set_job_id(c.target);
  v1::JobSummary job;
  check(server.AbortJob(unary_call().get(), ref, &job), "aborting job " + c.target);
  out << "job " << common::printable(job.job_id()) << ": " << common::printable(job.state())
      << "\n";
  return 0;
}

// To --out atomically (0600: a model is the project's), or to stdout made
// printable (the whole text at once: a part may end inside a character).
int save_stream(grpc::ClientReaderInterface<v1::FileChunk>& reader, const std::string& what,
                const std::string& out_file, std::ostream& out) {
  if (out_file.empty()) {
    std::string text;
    receive_file(reader, what, [&](const std::string& bytes) { text += bytes; });
    out << common::printable(text, common::LineBreaks::Keep);
    return 0;
  }
  storage::AtomicFile file(out_file, 0600);
  const auto bytes = receive_file(reader, what, [&](const std::string& b) { file.write(b); });
  file.commit();
  out << "wrote " << out_file << " (" << bytes << " bytes)\n";
  return 0;
}

int metrics(const AdminCommand& c, v1::Admin::StubInterface& server, std::ostream& out) {
  v1::JobRef ref;
  ref.set_job_id(c.target);
  grpc::ClientContext call;
  auto reader = server.GetMetrics(&call, ref);
  return save_stream(*reader, "fetching the metrics of job " + c.target, c.out, out);
}

int download(const AdminCommand& c, v1::Admin::StubInterface& server, std::ostream& out) {
  v1::ModelRequest request;
  request.set_job_id(c.target);
  request.set_which(c.model);
  grpc::ClientContext call;
  auto reader = server.DownloadModel(&call, request);
  return save_stream(*reader, "downloading the " + c.model + " model of job " + c.target, c.out,
                     out);
}

bool is_round_number(const std::string& text) {
  return !text.empty() && text.size() < 10 &&
         text.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::string usage_problem(const AdminCommand& c) {
  const bool needs_target = c.name != "list";
  if (c.name != "submit" && c.name != "list" && c.name != "status" && c.name != "wait" &&
      c.name != "abort" && c.name != "metrics" && c.name != "download")
    return c.name.empty() ? "no command given" : "no command " + c.name;
  if (needs_target && c.target.empty())
    return c.name + " needs " + (c.name == "submit" ? "a job file" : "a job id");
  if (!needs_target && !c.target.empty()) return "list takes no argument";
  if (c.wait && c.name != "submit") return "--wait belongs to submit";
  if (c.timeout_s && c.name != "wait" && !(c.name == "submit" && c.wait))
    return "--timeout belongs to wait (and submit --wait)";
  if (c.timeout_s && *c.timeout_s <= 0) return "--timeout must be positive seconds";
  if (!c.out.empty() && c.name != "metrics" && c.name != "download")
    return "--out belongs to metrics and download";
  if (c.name == "download" && c.out.empty()) return "download needs --out FILE";
  if (c.name == "download" && c.model != "final" && c.model != "best" &&
      !is_round_number(c.model))
    return "--model must be final, best or a round number, not " + c.model;
  return "";
}

int run_command(const AdminCommand& c, v1::Admin::StubInterface& server, std::ostream& out,
                std::ostream& err) {
  try {
    if (c.name == "submit") return submit(c, server, out);
    if (c.name == "list") return list(server, out);
    if (c.name == "status") {
      out << job_details(find_job(server, c.target));
      return 0;
    }
    if (c.name == "wait") return wait_for_end(server, c.target, c.timeout_s, out);
    if (c.name == "abort") return abort_job(c, server, out);
    if (c.name == "metrics") return metrics(c, server, out);
    return download(c, server, out);
  } catch (const std::invalid_argument& e) {
    err << "flare-admin: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    err << "flare-admin: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace flare::admin
