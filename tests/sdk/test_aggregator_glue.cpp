// The C++ SDK's aggregator table: the ABI 1.3 streamed-update entries are
// filled only for a class that overrides them, so the host gives every other
// aggregator whole updates.
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

}  // namespace

TEST_CASE("an SDK aggregator that takes whole updates leaves the 1.3 entries NULL") {
  const flare_aggregator_api_v1* api = flare::detail::AggregatorGlue<WholeUpdates>::api();
  CHECK(api->struct_size == FLARE_AGGREGATOR_API_SIZE_1_3);
  CHECK((api->accept != nullptr));
  CHECK((api->begin_update == nullptr));
  CHECK((api->accept_chunk == nullptr));
  CHECK((api->retract_chunk == nullptr));
  CHECK((api->end_update == nullptr));
  CHECK((api->abort_update == nullptr));
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
