// docs/job-spec.md against the parser: the keys it documents are the keys
// the parser accepts, its defaults are the ones the parser fills in, and its
// examples load and mean what they say. The page cannot drift from the code.
#include <doctest/doctest.h>
#include <toml++/toml.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

namespace fs = std::filesystem;
using flare::jobspec::accepted_keys;
using flare::jobspec::load_job_text;
using flare::jobspec::to_toml;

namespace {

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  REQUIRE_MESSAGE(in.good(), "cannot read " << file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(' ');
  const auto last = text.find_last_not_of(' ');
  return first == std::string::npos ? "" : text.substr(first, last - first + 1);
}

// A "| `key` | type | default | what |" row of the page's key tables.
struct DocumentedKey {
  std::string type, default_cell;
  int line = 0;
};

struct JobSpecDoc {
  std::map<std::string, DocumentedKey> keys;
  std::vector<std::string> duplicates;
  std::vector<std::string> examples;  // the ```toml blocks
};

std::vector<std::string> cells_of(const std::string& row) {
  std::vector<std::string> cells;
  std::stringstream in(row.substr(1));  // after the leading '|'
  std::string cell;
  while (std::getline(in, cell, '|')) cells.push_back(trim(cell));
  return cells;
}

JobSpecDoc read_doc(const fs::path& file) {
  JobSpecDoc doc;
  std::istringstream in(read_text(file));
  std::string line, block;
  bool in_block = false;
  for (int number = 1; std::getline(in, line); ++number) {
    if (in_block) {
      if (line == "```") {
        doc.examples.push_back(block);
        in_block = false;
      } else {
        block += line + "\n";
      }
    } else if (line == "```toml") {
      in_block = true;
      block.clear();
    } else if (line.starts_with("| `")) {
      const auto cells = cells_of(line);
      REQUIRE_MESSAGE(cells.size() >= 4, file << ":" << number << ": a key row has 4 cells");
      const std::string key = cells[0].substr(1, cells[0].size() - 2);  // inside the backticks
      if (doc.keys.contains(key)) doc.duplicates.push_back(key);
      doc.keys[key] = {cells[1], cells[2], number};
    }
  }
  return doc;
}

// `value` of the cell "`value`", when the cell is one TOML value in backticks.
std::optional<toml::table> literal_default(const std::string& cell) {
  if (cell.size() < 2 || cell.front() != '`' || cell.back() != '`') return std::nullopt;
  if (cell.find('`', 1) != cell.size() - 1) return std::nullopt;
  try {
    return toml::parse("v = " + cell.substr(1, cell.size() - 2));
  } catch (const toml::parse_error&) {
    return std::nullopt;  // e.g. `clients.count`: a key, not a value
  }
}

bool same_value(const toml::node& a, const toml::node& b) {
  if ((a.is_integer() || a.is_floating_point()) && (b.is_integer() || b.is_floating_point()))
    return a.value<double>() == b.value<double>();
  if (a.type() != b.type()) return false;
  if (const auto* array = a.as_array()) {
    const auto& other = *b.as_array();
    if (array->size() != other.size()) return false;
    for (size_t i = 0; i < array->size(); ++i)
      if (!same_value(*array->get(i), *other.get(i))) return false;
    return true;
  }
  if (const auto* table = a.as_table()) {
    const auto& other = *b.as_table();
    if (table->size() != other.size()) return false;
    for (const auto& [key, value] : *table) {
      const toml::node* there = other.get(key.str());
      if (!there || !same_value(value, *there)) return false;
    }
    return true;
  }
  if (a.is_string()) return a.value<std::string>() == b.value<std::string>();
  if (a.is_boolean()) return a.value<bool>() == b.value<bool>();
  return false;  // dates and times: no key holds one
}

// Every leaf of `table` as "a.b.c" -> node.
void flatten(const toml::table& table, const std::string& prefix,
             std::map<std::string, const toml::node*>& out) {
  for (const auto& [key, value] : table) {
    const std::string path = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const auto* inner = value.as_table())
      flatten(*inner, path, out);
    else
      out[path] = &value;
  }
}

// What every job must hold, added to an example that lacks it.
std::string completed(const std::string& example) {
  std::string text = example;
  const toml::table parsed = toml::parse(example);
  if (!parsed.contains("trainer")) text += "\n[trainer]\nplugin = \"cifar10\"\n";
  if (!parsed.contains("data")) text += "\n[data]\ndir = \"data\"\n";
  return text;
}

const fs::path kDocFile = fs::path(FLARE_SOURCE_DIR) / "docs/job-spec.md";

// Keys whose default is no fixed value: computed from other keys or the
// place flare-run starts in, or required.
const std::set<std::string> kComputedDefaults = {
    "job.min_clients", "job.clients_per_round", "job.client_fraction", "clients.names", "job.workspace", "data.dir", "trainer.plugin", "trainer.path",
    "trainer.version", "aggregator.path", "aggregator.version"};

}  // namespace

TEST_CASE("docs/job-spec.md documents exactly the keys the parser accepts, each once") {
  const JobSpecDoc doc = read_doc(kDocFile);
  CHECK_MESSAGE(doc.duplicates.empty(), "documented twice: " << doc.duplicates.front());
  std::set<std::string> documented;
  for (const auto& [key, row] : doc.keys) documented.insert(key);
  const std::vector<std::string> accepted_list = accepted_keys();
  const std::set<std::string> accepted(accepted_list.begin(), accepted_list.end());
  CHECK(accepted.size() == accepted_list.size());
  for (const auto& key : accepted) CHECK_MESSAGE(documented.contains(key), "not documented: " << key);
  for (const auto& key : documented)
    CHECK_MESSAGE(accepted.contains(key), "documented but refused by the parser: " << key);
}

TEST_CASE("every default docs/job-spec.md gives is the one the parser fills in") {
  const JobSpecDoc doc = read_doc(kDocFile);
  const flare::jobspec::JobSpec minimal = load_job_text(kTrainerAndData, "/jobs/minimal.toml");
  const toml::table resolved = toml::parse(to_toml(minimal));
  int compared = 0;
  for (const auto& [key, row] : doc.keys) {
    CAPTURE(key);
    CAPTURE(row.line);
    CHECK_FALSE(row.type.empty());
    const auto literal = literal_default(row.default_cell);
    if (!literal) {
      // Computed or required: said in words, and only where no value could be.
      CHECK_MESSAGE((kComputedDefaults.contains(key) || key.starts_with("sites.<name>.")),
                    "default is not a TOML value in backticks: " << row.default_cell);
      continue;
    }
    const toml::node* value = resolved.at_path(key).node();
    CHECK_MESSAGE(value != nullptr, "the resolved job has no " << key);
    if (!value) continue;
    CHECK_MESSAGE(same_value(*literal->get("v"), *value),
                  "documented default " << row.default_cell << ", the parser's " << *value);
    ++compared;
  }
  CHECK(compared >= 30);  // the page's literal defaults were all read
}

TEST_CASE("every example in docs/job-spec.md loads, and each value it sets is the value the job gets") {
  const JobSpecDoc doc = read_doc(kDocFile);
  CHECK(doc.examples.size() >= 7);
  // Paths come back absolute; the rest exactly as written.
  const std::set<std::string> paths = {"job.workspace", "job.plugin_path", "data.dir",
                                       "trainer.path", "aggregator.path"};
  for (const std::string& example : doc.examples) {
    CAPTURE(example);
    flare::jobspec::JobSpec spec;
    REQUIRE_NOTHROW(spec = load_job_text(completed(example), "/jobs/example.toml"));
    const toml::table resolved = toml::parse(to_toml(spec));
    const toml::table example_table = toml::parse(example);
    std::map<std::string, const toml::node*> written;
    flatten(example_table, "", written);
    for (const auto& [key, value] : written) {
      if (paths.contains(key)) continue;
      CAPTURE(key);
      const toml::node* got = resolved.at_path(key).node();
      REQUIRE(got != nullptr);
      CHECK(same_value(*value, *got));
    }
  }
}
