// What mutual TLS costs the sites' transport, against plaintext, in one run
// (the modes interleaved, the median of the repeats): the real gRPC listener
// and credentials (RpcServer, server_credentials) and the sites' own client
// (ServerConnection) against a server that hands out a model and takes
// updates, hashing them as the audit does, with no aggregation, so only the
// transport is timed.
//   flare-bench-tls [ROUNDS=2000] [MODEL_MIB=1024] [REPEATS=3]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "identity/certificate_authority.hpp"
#include "server/audit_log.hpp"
#include "server/peer_admission.hpp"
#include "server/rpc_service.hpp"
#include "transport/model_stream.hpp"
#include "transport/server_connection.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using Clock = std::chrono::steady_clock;

namespace {

class ModelServer final : public v1::FlareServer::Service {
 public:
  explicit ModelServer(std::vector<tensor::OwnedTensor> model) : model_(std::move(model)) {}
  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*,
                        v1::RegisterReply* reply) override {
    reply->set_num_rounds(1 << 30);
    return grpc::Status::OK;
  }
  grpc::Status GetTask(grpc::ServerContext*, const v1::TaskRequest*,
                       grpc::ServerWriter<v1::TaskPart>* writer) override {
    v1::TaskPart part;
    part.mutable_task()->set_kind(v1::Task::TRAIN);
    part.mutable_task()->set_num_tensors(static_cast<int32_t>(model_.size()));
    if (!writer->Write(part)) return grpc::Status::OK;
    auto views = tensor::views_of(model_);
    transport::write_tensors(views, false, v1::RAW,
                             [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
                               transport::set_part(part, h, bytes);
                               return writer->Write(part);
                             });
    return grpc::Status::OK;
  }
  grpc::Status SubmitUpdate(grpc::ServerContext*, grpc::ServerReader<v1::UploadPart>* stream,
                            v1::Ack* ack) override {
    server::ReceivedDigest digest;
    v1::UploadPart part;
    while (stream->Read(&part))
      if (part.has_data()) digest.add(part.data());
    digest.sha256_hex();
    ack->set_accepted(true);
    return grpc::Status::OK;
  }

 private:
  std::vector<tensor::OwnedTensor> model_;
};

std::vector<tensor::OwnedTensor> model_of(size_t floats, int tensors) {
  std::vector<tensor::OwnedTensor> model;
  for (int i = 0; i < tensors; ++i) {
    const size_t n = floats / tensors;
    model.push_back({"t" + std::to_string(i), {kDLFloat, 32, 1}, {static_cast<int64_t>(n)},
                     std::vector<std::byte>(n * sizeof(float), std::byte{1})});
  }
  return model;
}

struct Mode {
  const char* name;
  std::shared_ptr<grpc::ServerCredentials> server;
  std::vector<std::optional<transport::TlsSettings>> sites;  // one per site
};

// Seconds per round: every site fetches its task with the model and sends an update, at once.
double seconds_per_round(const Mode& mode, ModelServer& service, int rounds, int sites) {
  server::RpcServer rpc(service, "127.0.0.1", 0, mode.server);
  std::vector<std::unique_ptr<transport::ServerConnection>> connections;
  for (int s = 0; s < sites; ++s) {
    connections.push_back(std::make_unique<transport::ServerConnection>(
        rpc.address(), "site-" + std::to_string(s + 1), transport::kDefaultAnswerTimeout,
        mode.sites.at(s)));
    connections.back()->register_site(1);  // the handshake, outside the timing
  }
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (auto& c : connections)
    threads.emplace_back([&, c = c.get()] {
      for (int r = 0; r < rounds; ++r) {
        auto task = c->next_task();
        auto views = tensor::views_of(task.model);
        v1::UpdateHeader header;
        c->submit_update(header, views, {});
      }
    });
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(Clock::now() - start).count() / rounds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 2000;
  const size_t model_mib = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1024;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;

  const auto validity = identity::validity_from(std::time(nullptr) - 60, 1);
  const auto ca = identity::CertificateAuthority::create("bench", validity);
  auto settings_for = [&](identity::Role role, const std::string& name) {
    auto issued = ca.issue({{role, name}, "", validity});
    return transport::TlsSettings{ca.certificate_pem(), issued.certificate_pem,
                                  issued.private_key_pem};
  };
  server::ServerTls tls{.tls = settings_for(identity::Role::server, "localhost")};
  Mode plain{"plaintext", nullptr, {std::nullopt, std::nullopt}};
  Mode mutual{"mutual TLS", server::server_credentials(tls, nullptr), {}};
  for (int s = 1; s <= 2; ++s)
    mutual.sites.push_back(settings_for(identity::Role::site, "site-" + std::to_string(s)));

  ModelServer tiny(model_of(16, 1));
  std::vector<double> plain_round, tls_round;
  for (int i = 0; i < repeats; ++i) {
    plain_round.push_back(seconds_per_round(plain, tiny, rounds, 2));
    tls_round.push_back(seconds_per_round(mutual, tiny, rounds, 2));
  }
  std::printf("tiny model (16 floats), 2 sites, %d rounds, median of %d:\n", rounds, repeats);
  std::printf("  plaintext  %.3f ms/round\n  mutual TLS %.3f ms/round (+%.3f ms)\n",
              median(plain_round) * 1e3, median(tls_round) * 1e3,
              (median(tls_round) - median(plain_round)) * 1e3);

  if (model_mib == 0) return 0;
  const size_t floats = model_mib * (size_t{1} << 20) / sizeof(float);
  ModelServer big(model_of(floats, 8));
  std::vector<double> plain_big, tls_big;
  for (int i = 0; i < repeats; ++i) {
    plain_big.push_back(seconds_per_round(plain, big, 1, 1));
    tls_big.push_back(seconds_per_round(mutual, big, 1, 1));
  }
  // A round moves the model twice: down (the task) and up (the update).
  const double gb = 2.0 * static_cast<double>(floats * sizeof(float)) / 1e9;
  std::printf("%zu MiB model, 1 site, down and up, median of %d:\n", model_mib, repeats);
  std::printf("  plaintext  %.2f s, %.2f GB/s\n  mutual TLS %.2f s, %.2f GB/s\n",
              median(plain_big), gb / median(plain_big), median(tls_big), gb / median(tls_big));
  return 0;
}
