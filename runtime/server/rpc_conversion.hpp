// The protocol's messages (transport/flare.proto) to and from the server's
// domain types: the only code in server/ besides the gRPC service itself that
// sees protobuf. Malformed content (JSON of the wrong shape, metrics that are
// not finite numbers, negative counts) is refused here, before anything reaches the controller, and every text a
// site sent is made printable (common::printable).
#pragma once

#include <cstdint>
#include <vector>

#include "server/domain.hpp"
#include "transport/flare.pb.h"

namespace flare::server {

namespace v1 = transport::v1;

// Throw InvalidRequest naming the field, the site and what was wrong.
SiteJoin from_wire(const v1::RegisterRequest& request);
// The initial model's tensors arrived (checked as a stream) after `header`.
InitialModel from_wire(const v1::InitialModelHeader& header,
                       std::vector<tensor::OwnedTensor> weights);
// An update's header: its tensors stream in afterwards, into an UpdateIntake.
SiteUpdate from_wire(const v1::UpdateHeader& update);
SiteEvaluation from_wire(const v1::Evaluation& evaluation);
SiteProgress from_wire(const v1::Progress& progress);
// At most kMaxMetricPoints points, names of 1 to kMaxMetricName bytes; a
// value that is not finite is dropped (SiteMetrics::dropped), not refused:
// one diverged step must not cost the site the rest of its figures.
SiteMetrics from_wire(const v1::MetricBatch& batch);
inline constexpr int kMaxMetricPoints = 4096;
inline constexpr size_t kMaxMetricName = 128;
RankFailure from_wire(const v1::Failure& failure);
SiteRefusal from_wire(const v1::Refusal& refusal);

// A task's wire header (its model, if any, streams after it: num_tensors).
v1::Task to_wire(const Task& task);

}  // namespace flare::server
