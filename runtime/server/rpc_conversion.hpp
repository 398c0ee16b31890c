// The protocol's messages (transport/flare.proto) to and from the server's
// domain types: the only code in server/ besides the gRPC service itself that
// sees protobuf. Malformed content (JSON of the wrong shape, metrics that are
// not finite numbers, negative counts, tensors that do not fit their bytes) is
// refused here, before anything reaches the controller, and every text a
// site sent is made printable (common::printable).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "server/domain.hpp"
#include "transport/flare.pb.h"

namespace flare::server {

namespace v1 = transport::v1;

// Throw InvalidRequest naming the field, the site and what was wrong.
SiteJoin from_wire(const v1::RegisterRequest& request);
InitialModel from_wire(const v1::InitialModel& model);
SiteUpdate from_wire(const v1::Update& update);
SiteEvaluation from_wire(const v1::Evaluation& evaluation);
SiteProgress from_wire(const v1::Progress& progress);
RankFailure from_wire(const v1::Failure& failure);

// Tasks in their wire form. Every site's Train (or Evaluate) task of a round
// carries the same global model: it is encoded once, and every reply sends
// that one immutable message (serializing a const message from several threads
// at once is safe: protobuf's cached sizes are atomic). Thread-safe.
class TaskEncoder {
 public:
  std::shared_ptr<const v1::Task> encode(const Task& task);
  // How many times a global model was encoded: once per model.
  int64_t model_encodings() const;

 private:
  mutable std::mutex mutex_;
  // The latest task carrying a model, and its encoding.
  GlobalModelPtr model_;
  TaskKind kind_ = TaskKind::Wait;
  int64_t round_ = 0;
  std::shared_ptr<const v1::Task> encoded_;
  int64_t model_encodings_ = 0;
};

}  // namespace flare::server
