// The gRPC face of the controller, and the server that hosts it. Each call
// converts its request to the domain (rpc_conversion), asks the controller,
// and converts the answer back; a refused request is answered, not thrown,
// and logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "server/audit_log.hpp"
#include "server/controller.hpp"
#include "server/parked_transfers.hpp"
#include "server/peer_admission.hpp"
#include "server/rpc_conversion.hpp"
#include "transport/flare.grpc.pb.h"

namespace flare::server {

// Models stream both ways (transport/model_stream.hpp): a task's global model
// is written part by part from the one shared GlobalModel, and an update is
// checked and folded into the aggregate as its parts arrive (UpdateIntake),
// so no request or reply ever holds a whole model.
// Who may ask what: over mutual TLS a request that names a site is taken only
// from that site's certificate (a party reports progress, failures and
// updates for itself alone).
struct CallerChecks {
  bool require_identity = false;  // true with TLS: the claimed site must be the caller's
  AuditLog* audit = nullptr;      // borrowed; may be null
};

// A cut transfer the server holds for the site to resume (ParkedTransfers):
// an upload's open intake and where its stream stands, a download's task.
struct OpenUpload;
struct CutDownload;
// server.answer_timeout_s's default: how long a cut transfer is held.
constexpr std::chrono::milliseconds kDefaultResumeGrace{30000};

class RpcService final : public transport::v1::FlareServer::Service {
 public:
  // `log` (may be null) gets a line per refused request. float32 tensors
  // travel both ways as `wire_encoding` (job: server.wire_dtype).
  // A cut upload or download is held `resume_grace` (job:
  // server.answer_timeout_s) for the site to resume it.
  explicit RpcService(Controller& controller, std::shared_ptr<spdlog::logger> log = nullptr,
                      transport::v1::WireEncoding wire_encoding = transport::v1::RAW,
                      CallerChecks checks = {},
                      std::chrono::milliseconds resume_grace = kDefaultResumeGrace);
  ~RpcService() override;

  grpc::Status Register(grpc::ServerContext*, const transport::v1::RegisterRequest*,
                        transport::v1::RegisterReply*) override;
  grpc::Status GetTask(grpc::ServerContext*, const transport::v1::TaskRequest*,
                       grpc::ServerWriter<transport::v1::TaskPart>*) override;
  grpc::Status SubmitInitialModel(grpc::ServerContext*,
                                  grpc::ServerReader<transport::v1::UploadPart>*,
                                  transport::v1::Ack*) override;
  grpc::Status SubmitUpdate(grpc::ServerContext*, grpc::ServerReader<transport::v1::UploadPart>*,
                            transport::v1::Ack*) override;
  grpc::Status SubmitEvaluation(grpc::ServerContext*, const transport::v1::Evaluation*,
                                transport::v1::Ack*) override;
  grpc::Status ReportProgress(grpc::ServerContext*, const transport::v1::Progress*,
                              transport::v1::Ack*) override;
  grpc::Status ReportMetrics(grpc::ServerContext*, const transport::v1::MetricBatch*,
                             transport::v1::Ack*) override;
  grpc::Status ReportFailure(grpc::ServerContext*, const transport::v1::Failure*,
                             transport::v1::Ack*) override;
  grpc::Status RefuseJob(grpc::ServerContext*, const transport::v1::Refusal*,
                         transport::v1::Ack*) override;
  grpc::Status SendHeartbeat(grpc::ServerContext*, const transport::v1::Heartbeat*,
                             transport::v1::Ack*) override;
  grpc::Status UploadStatus(grpc::ServerContext*, const transport::v1::UploadQuery*,
                            transport::v1::UploadState*) override;

 private:
  template <class F>
  grpc::Status answer(grpc::ServerContext* context, const char* call, const std::string& site,
                      transport::v1::Ack* ack, F&& body);
  // Throws RefusedPeer unless the caller may speak for `claimed_site`;
  // audits the caller's first request.
  void admit(grpc::ServerContext* context, const std::string& claimed_site) const;
  // The refusal's reason as the site is told it (printable), logged.
  std::string refused(grpc::ServerContext* context, const char* call, const std::string& site,
                      const std::string& reason) const;

  // Writes the task of `download` and its model from part `from_part`; the
  // download is then parked under `key` for a resume.
  grpc::Status send_task(grpc::ServerWriter<transport::v1::TaskPart>* writer,
                         const std::string& site, const std::string& key,
                         std::shared_ptr<CutDownload> download, uint64_t from_part);
  // The parked download a resuming TaskRequest names, if it fits; else null.
  std::shared_ptr<CutDownload> resumable_download(const transport::v1::TaskRequest& request,
                                                  const std::string& key);

  Controller& controller_;
  std::shared_ptr<spdlog::logger> log_;
  transport::v1::WireEncoding wire_encoding_;
  CallerChecks checks_;
  std::chrono::milliseconds resume_grace_;
  ParkedTransfers<OpenUpload> uploads_;
  ParkedTransfers<CutDownload> downloads_;
};

// A listening gRPC server of `service` (an RpcService); `port` 0 picks a free
// one (see bound_port()). `credentials`: server_credentials()
// (peer_admission.hpp); none: plaintext.
class RpcServer {
 public:
  RpcServer(grpc::Service& service, const std::string& host, int port,
            std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  // Several services on one port (the long-running server's job desk and
  // admin service), each borrowed.
  RpcServer(const std::vector<grpc::Service*>& services, const std::string& host, int port,
            std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  ~RpcServer();
  int bound_port() const { return port_; }
  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  std::string host_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace flare::server
