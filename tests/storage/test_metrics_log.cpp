#include "storage/metrics_log.hpp"

#include <doctest/doctest.h>

#include <sstream>

#include "temp_folder.hpp"

using flare::storage::MetricsLog;
using flare::testing::read_bytes;
using flare::testing::TempFolder;

namespace {

std::vector<nlohmann::json> parse_lines(const std::filesystem::path& file) {
  std::vector<nlohmann::json> records;
  std::istringstream in(read_bytes(file));
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

}  // namespace

TEST_CASE("each appended record is one JSON line, on disk before the log is closed") {
  TempFolder dir;
  MetricsLog log(dir / "run" / "metrics.jsonl");
  log.append({{"round", 0}, {"site", "site-1"}, {"val_accuracy", 0.125}});
  log.append({{"round", 0}, {"site", "server"}, {"test_accuracy", 0.25}});
  auto records = parse_lines(dir / "run" / "metrics.jsonl");
  REQUIRE(records.size() == 2);
  CHECK(records[0]["site"] == "site-1");
  CHECK(records[0]["val_accuracy"] == 0.125);
  CHECK(records[1]["test_accuracy"] == 0.25);
}

TEST_CASE("a reopened log keeps the earlier lines and appends after them") {
  TempFolder dir;
  { MetricsLog(dir / "metrics.jsonl").append({{"round", 0}}); }
  { MetricsLog(dir / "metrics.jsonl").append({{"round", 1}}); }
  auto records = parse_lines(dir / "metrics.jsonl");
  REQUIRE(records.size() == 2);
  CHECK(records[0]["round"] == 0);
  CHECK(records[1]["round"] == 1);
}

TEST_CASE("strings with newlines or broken UTF-8 still make one parseable line") {
  TempFolder dir;
  MetricsLog log(dir / "metrics.jsonl");
  log.append({{"note", "two\nlines"}, {"name", std::string("bad \xff byte")}});
  auto records = parse_lines(dir / "metrics.jsonl");
  REQUIRE(records.size() == 1);
  CHECK(records[0]["note"] == "two\nlines");
}

TEST_CASE("a log that cannot be opened fails naming the file") {
  TempFolder dir;
  std::filesystem::create_directory(dir / "taken");
  CHECK_THROWS_WITH_AS(MetricsLog(dir / "taken"), doctest::Contains("taken"),
                       flare::storage::StorageError);
}
