#include "run_options.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <sstream>

#include "jobspec/job_spec.hpp"

namespace po = boost::program_options;

namespace flare::cli {
namespace {

constexpr const char* kUsage =
    "usage: flare-run JOB.toml [--n_clients N] [--num_rounds R] [--use_tracking]\n"
    "                 [--export_config DIR] [--workspace DIR] [--set key.path=value ...]\n"
    "                 [--site-policy SITE=FILE ...]\n"
    "       flare-run --resume RUN_DIR [--site-policy SITE=FILE ...]\n";

// Options spelled with underscores (as NVFlare's example) are shown; the dash
// spellings are hidden aliases.
struct Spelling {
  const char* name;
  const char* alias;
};
constexpr Spelling kSpellings[] = {{"n_clients", "n-clients"},
                                   {"num_rounds", "num-rounds"},
                                   {"use_tracking", "use-tracking"},
                                   {"export_config", "export-config"}};

// clang-format off
po::options_description visible_options() {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help and exit")
      ("version", "show the version and exit")
      ("n_clients", po::value<int>()->value_name("N"), "number of sites (clients.count; a job with clients.names has one per name)")
      ("num_rounds", po::value<int>()->value_name("R"), "federated rounds (job.num_rounds)")
      ("use_tracking", po::bool_switch(), "write TensorBoard event files (job.use_tracking)")
      ("export_config", po::value<std::string>()->value_name("DIR"),
       "write the resolved job to DIR/job.toml")
      ("workspace", po::value<std::string>()->value_name("DIR"), "run folder (job.workspace)")
      ("set", po::value<std::vector<std::string>>()->value_name("KEY=VALUE")->composing(),
       "override one job spec value, e.g. --set trainer.config.lr=0.01 (repeatable)")
      ("site-policy", po::value<std::vector<std::string>>()->value_name("SITE=FILE")->composing(),
       "run SITE under the policy FILE, as its own flare-client --policy would (repeatable)")
      ("resume", po::value<std::string>()->value_name("RUN_DIR"),
       "go on with the run in RUN_DIR (<workspace>/run-N or latest) after its last checkpoint");
  return options;
}

po::options_description hidden_options() {
  po::options_description options;
  options.add_options()
      ("job", po::value<std::string>())
      ("n-clients", po::value<int>())
      ("num-rounds", po::value<int>())
      ("use-tracking", po::bool_switch())
      ("export-config", po::value<std::string>());
  return options;
}
// clang-format on

// The value of an option given under either spelling; both at once is an error.
template <typename T>
std::optional<T> either(const po::variables_map& values, const Spelling& spelling) {
  const bool has_name = values.count(spelling.name) && !values[spelling.name].defaulted();
  const bool has_alias = values.count(spelling.alias) && !values[spelling.alias].defaulted();
  if (has_name && has_alias)
    throw UsageError(std::string("expected --") + spelling.name + " once, found it also as --" +
                     spelling.alias);
  if (!has_name && !has_alias) return std::nullopt;
  return values[has_name ? spelling.name : spelling.alias].as<T>();
}

// --resume runs the job as RUN_DIR/job.toml says: an option that would change
// it (or a second job) is refused, not silently ignored.
void check_resume_alone(const po::variables_map& values) {
  for (const char* option : {"job", "n_clients", "n-clients", "num_rounds", "num-rounds",
                             "use_tracking", "use-tracking", "export_config", "export-config",
                             "workspace", "set"}) {
    if (!values.count(option) || values[option].defaulted()) continue;
    const std::string what = std::string(option) == "job"
                                 ? "a job file ('" + values["job"].as<std::string>() + "')"
                                 : "--" + std::string(option);
    throw UsageError("--resume runs RUN_DIR/job.toml unchanged: expected no job file or job "
                     "option beside it, found " + what + "\n" + kUsage);
  }
}

std::optional<int> at_least_one(std::optional<int> value, const char* option) {
  if (value && *value < 1)
    throw UsageError(std::string("--") + option + ": expected an integer >= 1, found " +
                     std::to_string(*value));
  return value;
}

}  // namespace

RunOptions parse_run_options(int argc, const char* const argv[]) {
  const po::options_description visible = visible_options();
  po::options_description all;
  all.add(visible).add(hidden_options());
  po::positional_options_description positional;
  positional.add("job", 1);

  po::variables_map values;
  try {
    // No guessing: an abbreviated option would silently bind to another one.
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(
        po::command_line_parser(argc, argv).options(all).positional(positional).style(style).run(),
        values);
    po::notify(values);
  } catch (const po::error& error) {
    throw UsageError(std::string(error.what()) + "\n" + kUsage);
  }

  RunOptions options;
  std::ostringstream help;
  help << kUsage << "\n" << visible << "\nOption names may use '-' instead of '_' (--n-clients).\n";
  options.help_text = help.str();
  options.show_help = values.count("help") > 0;
  options.show_version = values.count("version") > 0;
  if (values.count("resume")) {
    check_resume_alone(values);
    options.resume_dir = values["resume"].as<std::string>();
    if (options.resume_dir->empty())
      throw UsageError(std::string("--resume: expected a run folder, found ''\n") + kUsage);
  } else if (values.count("job")) {
    options.job_file = values["job"].as<std::string>();
  } else if (!options.show_help && !options.show_version) {
    throw UsageError(std::string("expected a job file (JOB.toml), found none\n") + kUsage);
  }

  options.n_clients = at_least_one(either<int>(values, kSpellings[0]), "n_clients");
  options.num_rounds = at_least_one(either<int>(values, kSpellings[1]), "num_rounds");
  options.use_tracking = either<bool>(values, kSpellings[2]).value_or(false);
  if (const auto dir = either<std::string>(values, kSpellings[3])) options.export_config = *dir;
  if (values.count("workspace")) options.workspace = values["workspace"].as<std::string>();
  if (values.count("set")) options.sets = values["set"].as<std::vector<std::string>>();
  if (values.count("site-policy")) {
    for (const auto& entry : values["site-policy"].as<std::vector<std::string>>()) {
      const auto eq = entry.find('=');
      if (eq == 0 || eq == std::string::npos || eq + 1 == entry.size())
        throw UsageError("--site-policy: expected SITE=FILE, found '" + entry + "'\n" + kUsage);
      if (!options.site_policies.emplace(entry.substr(0, eq), entry.substr(eq + 1)).second)
        throw UsageError("--site-policy: expected one policy per site, found " +
                         entry.substr(0, eq) + " twice\n" + kUsage);
    }
  }
  return options;
}

std::vector<std::string> to_overrides(const RunOptions& options) {
  std::vector<std::string> overrides;
  if (options.n_clients) {
    overrides.push_back("clients.count=" + std::to_string(*options.n_clients));
    // A smaller site count must not leave min_clients above it.
    const bool sets_min_clients =
        std::any_of(options.sets.begin(), options.sets.end(), [](const std::string& set) {
          std::string key = set.substr(0, set.find('='));
          std::erase_if(key, [](char c) { return c == ' ' || c == '\t'; });
          return key == "job.min_clients";
        });
    if (!sets_min_clients)
      overrides.push_back("job.min_clients=" + std::to_string(*options.n_clients));
  }
  if (options.num_rounds)
    overrides.push_back("job.num_rounds=" + std::to_string(*options.num_rounds));
  if (options.use_tracking) overrides.push_back("job.use_tracking=true");
  // Quoted: a folder named "2024" or "true" is still a path.
  if (options.workspace)
    overrides.push_back(jobspec::string_override("job.workspace", options.workspace->string()));
  overrides.insert(overrides.end(), options.sets.begin(), options.sets.end());
  return overrides;
}

}  // namespace flare::cli
