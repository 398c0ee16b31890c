// The C++ SDK's aggregator table: the ABI 1.3 streamed-update entries and the
// ABI 1.4 state entries are filled only for a class that overrides them, so
// the host gives every other aggregator whole updates and keeps no state for
// it; the properties are the class's own.
#include <flare/plugin.hpp>

#include <doctest/doctest.h>

namespace {

class WholeUpdates : public flare::Aggregator {
 public:
  WholeUpdates(const nlohmann::json&, flare::Host) {}
  void begin_round(int64_t, std::span<const flare_named_tensor>) override {}
  void accept(const flare_site_update&) override {}
  std::vector<flare_named_tensor> finalize() override { return {}; }
};

class Streamed final : public WholeUpdates {
 public:
  using WholeUpdates::WholeUpdates;
  void begin_update(uint64_t, const flare_site_update&) override {}
  void accept_chunk(uint64_t, const flare_update_chunk&) override {}
  void retract_chunk(uint64_t, const flare_update_chunk&) override {}
  void end_update(uint64_t) override {}
  void abort_update(uint64_t) noexcept override {}
};

class KeepsUpdatesWithState final : public WholeUpdates {
 public:
  static constexpr uint64_t properties = FLARE_AGGREGATOR_KEEPS_UPDATES;
  using WholeUpdates::WholeUpdates;
  flare::AggregatorState state() override {
    flare::AggregatorState s;
    s.meta["rounds"] = rounds;
    return s;
  }
  void set_state(std::span<const flare_named_tensor>, const nlohmann::json& meta) override {
    rounds = meta.at("rounds").get<int>();
  }
  int rounds = 0;
};

// Streams by default; its config may keep updates instead.
class KeepsByConfig final : public WholeUpdates {
 public:
  KeepsByConfig(const nlohmann::json& config, flare::Host host)
      : WholeUpdates(config, host), keeps(config.value("keep", false)) {}
  void begin_update(uint64_t, const flare_site_update&) override {}
  void accept_chunk(uint64_t, const flare_update_chunk&) override {}
  void retract_chunk(uint64_t, const flare_update_chunk&) override {}
  void end_update(uint64_t) override {}
  void abort_update(uint64_t) noexcept override {}
  uint64_t instance_properties() const { return keeps ? FLARE_AGGREGATOR_KEEPS_UPDATES : 0; }
  bool keeps;
};

}  // namespace

TEST_CASE("an SDK aggregator that takes whole updates leaves the 1.3 entries NULL") {
  const flare_aggregator_api_v1* api = flare::detail::AggregatorGlue<WholeUpdates>::api();
  CHECK(api->struct_size == FLARE_AGGREGATOR_API_SIZE_1_4);
  CHECK((api->accept != nullptr));
  CHECK((api->begin_update == nullptr));
  CHECK((api->accept_chunk == nullptr));
  CHECK((api->retract_chunk == nullptr));
  CHECK((api->end_update == nullptr));
  CHECK((api->abort_update == nullptr));
  CHECK(api->properties == 0);
  CHECK((api->get_state == nullptr));
  CHECK((api->set_state == nullptr));
  CHECK((api->instance_properties == nullptr));
}

TEST_CASE("an SDK aggregator that overrides the streamed calls fills all five") {
  const flare_aggregator_api_v1* api = flare::detail::AggregatorGlue<Streamed>::api();
  CHECK((api->accept != nullptr));
  CHECK((api->begin_update != nullptr));
  CHECK((api->accept_chunk != nullptr));
  CHECK((api->retract_chunk != nullptr));
  CHECK((api->end_update != nullptr));
  CHECK((api->abort_update != nullptr));
}

TEST_CASE("an SDK aggregator's properties and state reach its table, and the state round-trips") {
  using Glue = flare::detail::AggregatorGlue<KeepsUpdatesWithState>;
  const flare_aggregator_api_v1* api = Glue::api();
  CHECK(api->properties == FLARE_AGGREGATOR_KEEPS_UPDATES);
  CHECK((api->begin_update == nullptr));
  CHECK((api->instance_properties == nullptr));  // not declared: the table's hold
  REQUIRE((api->get_state != nullptr));
  REQUIRE((api->set_state != nullptr));

  flare_aggregator handle;
  auto impl = std::make_unique<KeepsUpdatesWithState>(nlohmann::json::object(), flare::Host(nullptr));
  KeepsUpdatesWithState* aggregator = impl.get();
  handle.impl = std::move(impl);
  aggregator->rounds = 7;
  const flare_named_tensor* tensors = nullptr;
  size_t count = 1;
  const char* meta = nullptr;
  REQUIRE(api->get_state(&handle, &tensors, &count, &meta) == nullptr);
  CHECK(count == 0);
  REQUIRE(meta != nullptr);
  CHECK(nlohmann::json::parse(meta).at("rounds") == 7);

  aggregator->rounds = 0;
  REQUIRE(api->set_state(&handle, tensors, count, meta) == nullptr);
  CHECK(aggregator->rounds == 7);
}

TEST_CASE("an SDK aggregator declaring instance_properties reports each instance's own") {
  const flare_aggregator_api_v1* api = flare::detail::AggregatorGlue<KeepsByConfig>::api();
  REQUIRE((api->instance_properties != nullptr));
  CHECK(api->properties == 0);
  CHECK((api->begin_update != nullptr));
  for (const bool keep : {false, true}) {
    CAPTURE(keep);
    flare_aggregator handle;
    handle.impl = std::make_unique<KeepsByConfig>(nlohmann::json{{"keep", keep}},
                                                  flare::Host(nullptr));
    CHECK(api->instance_properties(&handle) == (keep ? FLARE_AGGREGATOR_KEEPS_UPDATES : 0));
  }
}
