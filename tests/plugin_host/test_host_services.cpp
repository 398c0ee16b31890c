#include "plugin_host/host_services.hpp"

#include <flare/plugin.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using flare::host::Collectives;
using flare::host::HostCallbacks;
using flare::host::HostServices;

namespace {

// A group whose collectives fail the way a lost peer would.
class BrokenCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void all_reduce(DLTensor&, flare_reduce_op) override {
    throw std::runtime_error("peer rank 1 closed the connection");
  }
  void broadcast(DLTensor&, int root) override {
    throw std::runtime_error("broadcast from rank " + std::to_string(root) + " timed out");
  }
  void barrier() override { throw 42; }
};

// A work that records whether it was waited for and fails if told to.
class RecordedWork final : public Collectives::Work {
 public:
  RecordedWork(int& waits, bool fail) : waits_(waits), fail_(fail) {}
  void wait() override {
    ++waits_;
    if (fail_) throw std::runtime_error("peer rank 1 vanished mid-reduction");
  }

 private:
  int& waits_;
  bool fail_;
};

// Hands out recorded works, so a test sees when the host waits for them.
class AsyncCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void all_reduce(DLTensor&, flare_reduce_op) override { ++blocking; }
  std::unique_ptr<Work> all_reduce_start(DLTensor&, flare_reduce_op) override {
    ++started;
    return std::make_unique<RecordedWork>(waits, fail);
  }
  void broadcast(DLTensor&, int) override {}
  void barrier() override {}
  int blocking = 0, started = 0, waits = 0;
  bool fail = false;
};

// Doubles tensors in place, like a sum over two equal ranks.
class DoublingCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void all_reduce(DLTensor& t, flare_reduce_op) override {
    auto* data = static_cast<float*>(t.data);
    for (int64_t i = 0; i < t.shape[0]; ++i) data[i] *= 2;
  }
  void broadcast(DLTensor&, int) override {}
  void barrier() override { ++barriers; }
  int barriers = 0;
};

DLTensor float_vector(float* data, int64_t* shape) {
  return flare::dl_view(data, {kDLFloat, 32, 1}, shape, 1);
}

}  // namespace

TEST_CASE("an error object carries its code and a copy of its message until released") {
  const HostServices host;
  const auto* t = host.table();
  std::string message = "bad tensor 'fc.weight'";
  flare_error* e = t->error_new(FLARE_ERROR_INVALID_ARGUMENT, message.c_str());
  message = "overwritten";
  REQUIRE(e != nullptr);
  CHECK(t->error_code(e) == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(t->error_message(e)) == "bad tensor 'fc.weight'");
  t->error_release(e);
}

TEST_CASE("error functions tolerate NULL") {
  const HostServices host;
  const auto* t = host.table();
  flare_error* e = t->error_new(FLARE_ERROR_IO, nullptr);
  CHECK(std::string(t->error_message(e)).empty());
  t->error_release(e);
  t->error_release(nullptr);
  CHECK(std::string(t->error_message(nullptr)).empty());
}

TEST_CASE("error codes have their ABI names, unknown codes their number") {
  CHECK(flare::host::error_code_name(FLARE_ERROR_COMMUNICATION) == "FLARE_ERROR_COMMUNICATION");
  CHECK(flare::host::error_code_name(static_cast<flare_error_code>(99)) == "FLARE_ERROR_99");
}

TEST_CASE("the table describes itself and points its context at the services") {
  const HostServices host;
  CHECK(host.table()->struct_size == sizeof(flare_host_services));
  CHECK(host.table()->context == &host);
}

TEST_CASE("log, metric, progress and cancellation reach the callbacks") {
  std::vector<std::string> seen;
  bool cancel = false;
  HostCallbacks callbacks;
  callbacks.log = [&](flare_log_level level, std::string_view m) {
    seen.push_back("log " + std::to_string(level) + " " + std::string(m));
  };
  callbacks.metric = [&](std::string_view name, double value, int64_t step) {
    seen.push_back("metric " + std::string(name) + " " + std::to_string(value) + " " +
                   std::to_string(step));
  };
  callbacks.progress = [&](std::string_view phase, int64_t epoch, int64_t step, int64_t total) {
    seen.push_back("progress " + std::string(phase) + " " + std::to_string(epoch) + " " +
                   std::to_string(step) + "/" + std::to_string(total));
  };
  callbacks.cancelled = [&] { return cancel; };
  const HostServices host(callbacks);
  const auto* t = host.table();

  t->log(t->context, FLARE_LOG_WARN, "careful");
  t->report_metric(t->context, "train_loss", 0.25, 7);
  t->report_progress(t->context, "train", 1, 3, 10);
  CHECK(t->is_cancelled(t->context) == 0);
  cancel = true;
  CHECK(t->is_cancelled(t->context) == 1);

  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == "log 2 careful");
  CHECK(seen[1] == "metric train_loss 0.250000 7");
  CHECK(seen[2] == "progress train 1 3/10");
}

TEST_CASE("a throwing callback does not cross into the plugin") {
  HostCallbacks callbacks;
  callbacks.log = [](flare_log_level, std::string_view) { throw std::runtime_error("sink full"); };
  callbacks.cancelled = []() -> bool { throw std::runtime_error("no answer"); };
  const HostServices host(callbacks);
  const auto* t = host.table();
  t->log(t->context, FLARE_LOG_INFO, "dropped");
  CHECK(t->is_cancelled(t->context) == 0);
}

TEST_CASE("without callbacks the services still answer") {
  const HostServices host;
  const auto* t = host.table();
  t->log(t->context, FLARE_LOG_DEBUG, "to spdlog's default logger");
  t->report_metric(t->context, "x", 1.0, 0);
  t->report_progress(t->context, "train", 0, 0, 0);
  CHECK(t->is_cancelled(t->context) == 0);
}

TEST_CASE("collectives on a group of one rank leave the tensor as it is") {
  const HostServices host;
  const auto* t = host.table();
  float data[2] = {1, 2};
  int64_t shape[1] = {2};
  DLTensor tensor = float_vector(data, shape);
  CHECK(t->all_reduce(t->context, &tensor, FLARE_REDUCE_SUM) == nullptr);
  CHECK(t->broadcast(t->context, &tensor, 0) == nullptr);
  CHECK(t->barrier(t->context) == nullptr);
  CHECK(data[1] == 2);
}

TEST_CASE("collectives go to the worker group's implementation") {
  DoublingCollectives group;
  const HostServices host({}, &group);
  const auto* t = host.table();
  float data[2] = {1, 2};
  int64_t shape[1] = {2};
  DLTensor tensor = float_vector(data, shape);
  CHECK(t->all_reduce(t->context, &tensor, FLARE_REDUCE_SUM) == nullptr);
  CHECK(t->barrier(t->context) == nullptr);
  CHECK(data[1] == 4);
  CHECK(group.barriers == 1);
}

TEST_CASE("a failing collective becomes a communication error with its message") {
  BrokenCollectives group;
  const HostServices host({}, &group);
  const auto* t = host.table();
  float data[1] = {1};
  int64_t shape[1] = {1};
  DLTensor tensor = float_vector(data, shape);

  flare_error* e = t->all_reduce(t->context, &tensor, FLARE_REDUCE_SUM);
  REQUIRE(e != nullptr);
  CHECK(t->error_code(e) == FLARE_ERROR_COMMUNICATION);
  CHECK(std::string(t->error_message(e)) ==
        "all_reduce failed: peer rank 1 closed the connection");
  t->error_release(e);

  e = t->broadcast(t->context, &tensor, 1);
  REQUIRE(e != nullptr);
  CHECK(std::string(t->error_message(e)) == "broadcast failed: broadcast from rank 1 timed out");
  t->error_release(e);

  e = t->barrier(t->context);  // not even a std::exception
  REQUIRE(e != nullptr);
  CHECK(t->error_code(e) == FLARE_ERROR_COMMUNICATION);
  t->error_release(e);
}

TEST_CASE("a collective on a NULL tensor is an invalid argument") {
  DoublingCollectives group;
  const HostServices host({}, &group);
  const auto* t = host.table();
  flare_error* e = t->all_reduce(t->context, nullptr, FLARE_REDUCE_SUM);
  REQUIRE(e != nullptr);
  CHECK(t->error_code(e) == FLARE_ERROR_INVALID_ARGUMENT);
  t->error_release(e);
}

TEST_CASE("an asynchronous all-reduce starts on the group and wait_work completes and releases it") {
  AsyncCollectives group;
  const HostServices host({}, &group);
  const auto* t = host.table();
  REQUIRE(FLARE_HAS_FIELD(t, flare_host_services, wait_work));
  float data[1] = {1};
  int64_t shape[1] = {1};
  DLTensor tensor = float_vector(data, shape);
  flare_work* work = nullptr;
  REQUIRE(t->all_reduce_start(t->context, &tensor, FLARE_REDUCE_SUM, &work) == nullptr);
  REQUIRE(work != nullptr);
  CHECK(group.started == 1);
  CHECK(group.waits == 0);
  CHECK(t->wait_work(t->context, work) == nullptr);
  CHECK(group.waits == 1);
  CHECK(group.blocking == 0);
}

TEST_CASE("a failed asynchronous all-reduce is a communication error from wait_work") {
  AsyncCollectives group;
  group.fail = true;
  const HostServices host({}, &group);
  const auto* t = host.table();
  float data[1] = {1};
  int64_t shape[1] = {1};
  DLTensor tensor = float_vector(data, shape);
  flare_work* work = nullptr;
  REQUIRE(t->all_reduce_start(t->context, &tensor, FLARE_REDUCE_SUM, &work) == nullptr);
  flare_error* e = t->wait_work(t->context, work);  // releases the work too
  REQUIRE(e != nullptr);
  CHECK(t->error_code(e) == FLARE_ERROR_COMMUNICATION);
  CHECK(std::string(t->error_message(e)) ==
        "all_reduce failed: peer rank 1 vanished mid-reduction");
  t->error_release(e);
}

TEST_CASE("collectives without an asynchronous all-reduce run the blocking one at start") {
  DoublingCollectives group;
  const HostServices host({}, &group);
  const auto* t = host.table();
  float data[1] = {3};
  int64_t shape[1] = {1};
  DLTensor tensor = float_vector(data, shape);
  flare_work* work = nullptr;
  REQUIRE(t->all_reduce_start(t->context, &tensor, FLARE_REDUCE_SUM, &work) == nullptr);
  CHECK(data[0] == 6);
  CHECK(t->wait_work(t->context, work) == nullptr);
  flare_error* e = t->all_reduce_start(t->context, nullptr, FLARE_REDUCE_SUM, &work);
  REQUIRE(e != nullptr);
  CHECK(t->error_code(e) == FLARE_ERROR_INVALID_ARGUMENT);
  t->error_release(e);
}
