// The range of every number a job spec holds, in one place. load_job refuses
// a value outside it (file:line:key and what was expected), so everything
// after loading may convert a count or a duration without overflowing: a
// timeout of 1e18 s once became a collective timeout of 1e21 ms. README.md
// lists these ranges where it documents the keys. Internal to flare_jobspec.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace flare::jobspec {

struct IntegerRange {
  int64_t min;
  int64_t max;
};

struct NumberRange {
  double min;
  double max;
};

// Seconds.
struct DurationRange {
  double min_s;
  double max_s;
  std::string_view max_in_words;
};

inline constexpr IntegerRange kNumRoundsRange{1, 1'000'000};          // job.num_rounds
inline constexpr IntegerRange kClientCountRange{1, 100'000};          // clients.count
inline constexpr IntegerRange kSeedRange{0, std::numeric_limits<int64_t>::max()};  // job.seed
inline constexpr IntegerRange kDevicesRange{1, 4096};                 // devices = N, ids listed
inline constexpr IntegerRange kNodesRange{1, 1024};                   // nodes
inline constexpr IntegerRange kPortRange{0, 65535};                   // master_port, server.port
inline constexpr IntegerRange kMaxRestartsRange{0, 1000};             // max_restarts
inline constexpr IntegerRange kSaveEveryRange{1, 1'000'000};          // server.save_every
inline constexpr IntegerRange kKeepLastRange{0, 1'000'000};           // server.keep_last (0: all)
inline constexpr IntegerRange kKeepCheckpointsRange{1, 1000};         // server.keep_checkpoints
// job.client_fraction: of clients.count, sampled each round (at least min_clients).
inline constexpr NumberRange kClientFractionRange{1e-6, 1.0};
// data.alpha: Dirichlet concentration. Below 0.001 nearly every class lands
// on one site (the split then rarely gives each site its least samples);
// above 1e6 it is IID in all but name.
inline constexpr NumberRange kDirichletAlphaRange{0.001, 1e6};
// Every timeout (server.round_timeout_s, server.worker_start_timeout_s,
// progress_timeout_s, rendezvous_timeout_s). At least a millisecond: the
// collectives count in whole milliseconds, where less is 0, no time at all.
// At most a week, longer than any round: in milliseconds that stays below
// 2^31, the narrowest type a timeout meets on its way (Gloo, socket options).
inline constexpr DurationRange kTimeoutRange{0.001, 7 * 24 * 3600, "7 days"};
// server.answer_timeout_s: sites ping a server every half of it, at most once
// a second, so less than 2 s would be a ping per answer.
inline constexpr DurationRange kAnswerTimeoutRange{2, 24 * 3600, "1 day"};
// server.heartbeat_interval_s: a beat is one small request; faster than 10 a
// second is load, not liveness.
inline constexpr DurationRange kHeartbeatIntervalRange{0.1, 3600, "1 hour"};

}  // namespace flare::jobspec
