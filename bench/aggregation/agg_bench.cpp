// Aggregator plugins through the C ABI (begin_round, accept per client,
// finalize on the raw function table of the loaded .so), then the same
// updates streamed in 4 MiB chunks (ABI 1.3: begin_update / accept_chunk /
// end_update), update after update and interleaved chunk by chunk across the
// clients as concurrent uploads arrive (for a single plugin also with the
// host's finite check of each chunk, on all cores and on the calling thread
// as the server does), against a copy of the same bytes on all cores and on
// one core, interleaved in the same run.
//   flare-bench-aggregation --plugin libflare_fedavg.so [--config JSON]
//                           [--plugin libflare_fedadam.so [--config JSON]] ...
//                           [--clients 8] [--params 25000000] [--repeats 7]
// Each --config applies to the --plugin before it. Every plugin's rounds and
// the copies take turns within each repeat, so all figures share the
// machine's moments. A plugin with state (the FedOpt family) keeps it from
// round to round, as in a run.
// A plugin that keeps updates until finalize (ABI 1.4: median, Krum, ...) is
// given whole updates, which stay alive until finalize; its finalize is also
// timed alone (a 1.4 host has checked every value, so the accepts before it
// only keep the views).
// GB/s: aggregation bytes = (clients + 1) x 4 x params (each input read once,
// the output written once); a copy's bytes = read + written, of the same total.
#include "plugin_host/host_services.hpp"
#include "plugin_host/plugin_loader.hpp"

#include "flat_math.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>

using namespace flare::host;

namespace {

struct PluginChoice {
  std::string path;
  std::string config = "{}";
};

struct Options {
  std::vector<PluginChoice> plugins;
  size_t clients = 8;
  size_t params = 25'000'000;
  size_t repeats = 7;
  // --variates scaffold: half the parameters are SCAFFOLD's control variates
  // ("scaffold.c/<tensor>", one per tensor), as a scaffold job's model is.
  bool scaffold_variates = false;
};

Options parse(int argc, char** argv) {
  Options o;
  bool usage = argc % 2 == 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--plugin") o.plugins.push_back({value});
    else if (key == "--config" && !o.plugins.empty()) o.plugins.back().config = value;
    else if (key == "--clients") o.clients = std::stoul(value);
    else if (key == "--params") o.params = std::stoul(value);
    else if (key == "--repeats") o.repeats = std::stoul(value);
    else if (key == "--variates" && value == "scaffold") o.scaffold_variates = true;
    else usage = true;
  }
  if (usage || o.plugins.empty() || o.clients == 0 || o.params < 1000 || o.repeats == 0)
    throw std::invalid_argument(
        "usage: flare-bench-aggregation --plugin PATH [--config JSON] [--plugin PATH [--config "
        "JSON]] ... [--clients N] [--params P>=1000] [--repeats R] [--variates scaffold]");
  return o;
}

// 20 tensors like a CNN's (weight, bias) pairs, growing, summing to `params`
// (agg_numpy.py's cnn20 layout in spirit).
std::vector<size_t> layer_sizes(size_t params) {
  std::vector<size_t> sizes;
  size_t used = 0;
  for (size_t k = 1; k <= 10; ++k) {
    const size_t bias = 64 * k;
    const size_t weight = k < 10 ? params * k / 55 - bias : params - used - bias;
    sizes.push_back(weight);
    sizes.push_back(bias);
    used += weight + bias;
  }
  return sizes;
}

struct Client {
  std::vector<float> data;
  std::vector<int64_t> shapes;
  std::vector<std::string> names;
  std::vector<flare_named_tensor> tensors;
};

// Tensors "layer<i>"; with `variates`, the second half of `sizes` mirrors the
// first as "scaffold.c/layer<i>".
Client make_client(const std::vector<size_t>& sizes, size_t params, unsigned seed,
                   bool variates) {
  Client c;
  c.data.resize(params);
  uint32_t state = seed * 2654435761u + 1;
  for (auto& v : c.data) {  // cheap, deterministic, finite
    state = state * 1664525u + 1013904223u;
    v = static_cast<float>(static_cast<int32_t>(state)) * 1e-9f;
  }
  c.shapes.assign(sizes.begin(), sizes.end());
  const size_t layers = variates ? sizes.size() / 2 : sizes.size();
  for (size_t i = 0; i < sizes.size(); ++i)
    c.names.push_back((i < layers ? "layer" : "scaffold.c/layer") + std::to_string(i % layers));
  size_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    flare_named_tensor t{};
    t.struct_size = sizeof(t);
    t.name = c.names[i].c_str();
    t.tensor = {c.data.data() + offset, {kDLCPU, 0}, 1, {kDLFloat, 32, 1}, &c.shapes[i], nullptr, 0};
    c.tensors.push_back(t);
    offset += sizes[i];
  }
  return c;
}

void check(const flare_host_services* host, flare_error* e, const char* call) {
  if (!e) return;
  const std::string message = host->error_message(e);
  host->error_release(e);
  throw std::runtime_error(std::string(call) + " failed: " + message);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

size_t cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<size_t>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// memcpy of src into dst split over `threads` threads, in seconds.
double timed_copy(std::vector<char>& dst, const std::vector<char>& src, size_t threads) {
  const auto start = std::chrono::steady_clock::now();
  const size_t share = (src.size() + threads - 1) / threads;
  std::vector<std::jthread> helpers;
  for (size_t t = 0; t < threads; ++t) {
    const size_t a = std::min(src.size(), t * share), b = std::min(src.size(), a + share);
    helpers.emplace_back([&, a, b] { std::memcpy(dst.data() + a, src.data() + a, b - a); });
  }
  helpers.clear();
  return seconds_since(start);
}

struct Spread {
  double median, min, max;
};
Spread spread(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// 4 MiB pieces of float32, as the streamed transfer cuts an update.
constexpr size_t kPieceElements = size_t{1} << 20;

struct Piece {
  size_t tensor, offset, count;
};

std::vector<Piece> pieces_of(const std::vector<size_t>& sizes) {
  std::vector<Piece> out;
  for (size_t t = 0; t < sizes.size(); ++t)
    for (size_t first = 0; first < sizes[t]; first += kPieceElements)
      out.push_back({t, first, std::min(kPieceElements, sizes[t] - first)});
  return out;
}

// The host's finite check of each piece: on its own threads (flat_math), or
// on the calling thread alone as the server's UpdateIntake checks a piece.
enum class Mode {
  Whole,
  UpdateAfterUpdate,
  Interleaved,
  InterleavedChecked,
  InterleavedCheckedOnCaller,
  FinalizeAlone,  // a row, not a round: the Whole round's finalize
};

// One round of `mode` through the raw table: begin_round ... finalize.
// Returns the seconds finalize took.
double run_round(const flare_aggregator_api_v1* api, flare_aggregator* agg,
               const flare_host_services* table, std::vector<Client>& clients,
               const std::vector<size_t>& sizes, const std::vector<Piece>& pieces, Mode mode) {
  check(table, api->begin_round(agg, 0, clients[0].tensors.data(), sizes.size()), "begin_round");
  flare_site_update u{};
  u.struct_size = sizeof(u);
  u.site = "site";
  u.num_steps = 1;
  auto chunk = [&](size_t k, const Piece& p) {
    const flare_named_tensor& t = clients[k].tensors[p.tensor];
    const float* data = static_cast<const float*>(t.tensor.data) + p.offset;
    const bool finite = mode == Mode::InterleavedChecked ? flare::agg::all_finite(data, p.count)
                        : mode == Mode::InterleavedCheckedOnCaller
                            ? flare::agg::one_thread::all_finite(data, p.count)
                            : true;
    if (!finite) throw std::runtime_error("a generated update is not finite");
    const flare_update_chunk c{sizeof(flare_update_chunk), FLARE_UPDATE_WEIGHTS, p.tensor, &t,
                               p.offset, p.count, data};
    check(table, api->accept_chunk(agg, k, &c), "accept_chunk");
  };
  for (size_t k = 0; k < clients.size(); ++k) {
    u.num_samples = 100.0 + double(k);
    if (mode == Mode::Whole) {
      u.weights = clients[k].tensors.data();
      u.num_weights = sizes.size();
      check(table, api->accept(agg, &u), "accept");
    } else {
      check(table, api->begin_update(agg, k, &u), "begin_update");
      if (mode != Mode::UpdateAfterUpdate) continue;
      for (const Piece& p : pieces) chunk(k, p);
      check(table, api->end_update(agg, k), "end_update");
    }
  }
  if (mode != Mode::Whole && mode != Mode::UpdateAfterUpdate) {
    for (const Piece& p : pieces)
      for (size_t k = 0; k < clients.size(); ++k) chunk(k, p);
    for (size_t k = 0; k < clients.size(); ++k) check(table, api->end_update(agg, k), "end_update");
  }
  const flare_named_tensor* out = nullptr;
  size_t count = 0;
  const auto start = std::chrono::steady_clock::now();
  check(table, api->finalize(agg, &out, &count), "finalize");
  return seconds_since(start);
}

}  // namespace

// One plugin under test: its handle and its rows.
struct Subject {
  LoadedPlugin plugin;
  const flare_aggregator_api_v1* api = nullptr;
  flare_aggregator* agg = nullptr;
  std::string name, config;
  struct Row {
    std::string label;
    Mode mode;
    std::vector<double> gbs;
  };
  std::vector<Row> rows;
  bool keeps = false;  // ABI 1.4 FLARE_AGGREGATOR_KEEPS_UPDATES: finalize timed alone too
};

int main(int argc, char** argv) try {
  Options o = parse(argc, argv);
  HostCallbacks quiet;  // a plugin's per-round lines would interleave with the table
  quiet.log = [](flare_log_level level, std::string_view message) {
    if (level >= FLARE_LOG_WARN)
      std::fprintf(stderr, "%.*s\n", int(message.size()), message.data());
  };
  const HostServices host(quiet);
  const flare_host_services* table = host.table();
  std::vector<Subject> subjects;
  for (const PluginChoice& choice : o.plugins) {
    Subject s{load_plugin({"", choice.path, {}}, FLARE_PLUGIN_AGGREGATOR)};
    s.api = static_cast<const flare_aggregator_api_v1*>(s.plugin.descriptor().api);
    // One plugin may run under two configs (fedavg's "fold"): the rows say which.
    s.name = s.plugin.descriptor().name + (choice.config == "{}" ? "" : " " + choice.config);
    s.config = choice.config;
    check(table, s.api->create(choice.config.c_str(), table, &s.agg), "create");
    // As the host reads them: this instance's properties (its config's
    // choice) where it reports them; an instance keeping updates takes them whole.
    const uint64_t properties =
        !FLARE_HAS_FIELD(s.api, flare_aggregator_api_v1, set_state) ? 0
        : FLARE_HAS_FIELD(s.api, flare_aggregator_api_v1, instance_properties) &&
                s.api->instance_properties
            ? s.api->instance_properties(s.agg)
            : s.api->properties;
    s.keeps = (properties & FLARE_AGGREGATOR_KEEPS_UPDATES) != 0;
    const bool streams = FLARE_HAS_FIELD(s.api, flare_aggregator_api_v1, abort_update) &&
                         s.api->begin_update && !s.keeps;
    s.rows.push_back({s.name + ", whole updates", Mode::Whole, {}});
    if (streams) {
      s.rows.push_back({"  streamed, one by one", Mode::UpdateAfterUpdate, {}});
      s.rows.push_back({"  streamed, interleaved", Mode::Interleaved, {}});
      if (o.plugins.size() == 1) {
        s.rows.push_back({"  + host check, threads", Mode::InterleavedChecked, {}});
        s.rows.push_back({"  + host check, 1 thread", Mode::InterleavedCheckedOnCaller, {}});
      }
    }
    if (s.keeps) s.rows.push_back({"  finalize alone", Mode::FinalizeAlone, {}});
    subjects.push_back(std::move(s));
  }

  auto sizes = layer_sizes(o.scaffold_variates ? o.params / 2 : o.params);
  if (o.scaffold_variates) {
    const auto half = sizes;
    sizes.insert(sizes.end(), half.begin(), half.end());
    o.params = o.params / 2 * 2;
  }
  const auto pieces = pieces_of(sizes);
  std::vector<Client> clients;
  for (size_t k = 0; k < o.clients; ++k)
    clients.push_back(make_client(sizes, o.params, unsigned(k), o.scaffold_variates));
  const double bytes = double(o.clients + 1) * 4.0 * double(o.params);
  std::vector<char> src(static_cast<size_t>(bytes / 2), 1), dst(src.size(), 0);

  const size_t all = cpus();
  std::vector<double> copy_all_gbs, copy_one_gbs;
  for (size_t r = 0; r <= o.repeats; ++r) {  // run 0 warms up (page faults)
    for (Subject& s : subjects)
      for (Subject::Row& row : s.rows) {
        if (row.mode == Mode::FinalizeAlone) continue;  // filled by the Whole row
        const auto start = std::chrono::steady_clock::now();
        const double finalize_s = run_round(s.api, s.agg, table, clients, sizes, pieces, row.mode);
        if (r == 0) continue;
        row.gbs.push_back(bytes / seconds_since(start) / 1e9);
        if (s.keeps && row.mode == Mode::Whole) s.rows.back().gbs.push_back(bytes / finalize_s / 1e9);
      }
    const double all_s = timed_copy(dst, src, all);
    const double one_s = timed_copy(dst, src, 1);
    if (r == 0) continue;
    copy_all_gbs.push_back(bytes / all_s / 1e9);
    copy_one_gbs.push_back(bytes / one_s / 1e9);
  }
  for (Subject& s : subjects) s.api->destroy(s.agg);

  const Spread c = spread(copy_all_gbs), c1 = spread(copy_one_gbs);
  std::printf("%zu clients x %zu float32 params (%zu tensors, %zu pieces of 4 MiB), %zu cpus, "
              "%zu runs:\n",
              o.clients, o.params, sizes.size(), pieces.size(), all, o.repeats);
  std::printf("  %-32s %8s %8s %8s  (GB/s, bytes = %.0f MB)  / all-core copy\n", "", "median",
              "min", "max", bytes / 1e6);
  std::string json = "{";
  for (const Subject& s : subjects) {
    for (const Subject::Row& row : s.rows) {
      const Spread a = spread(row.gbs);
      std::printf("  %-32s %8.2f %8.2f %8.2f  %3.0f%%\n", row.label.c_str(), a.median, a.min,
                  a.max, 100.0 * a.median / c.median);
      json += "\"" + s.name + ": " + row.label.substr(row.label.find_first_not_of(' ')) +
              "\": " + std::to_string(a.median) + ", ";
    }
  }
  std::printf("  %-32s %8.2f %8.2f %8.2f\n", "memcpy, all cores", c.median, c.min, c.max);
  std::printf("  %-32s %8.2f %8.2f %8.2f\n", "memcpy, one core", c1.median, c1.min, c1.max);
  std::printf("%s\"copy_all_gbs\": %.3f, \"copy_one_gbs\": %.3f, \"cpus\": %zu, \"runs\": %zu}\n",
              json.c_str(), c.median, c1.median, all, o.repeats);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "flare-bench-aggregation: %s\n", e.what());
  return 2;
}
