// flare-admin --startup DIR <command>: an admin's tool for the long-running
// server (deploy.proto's Admin service) over mutual TLS with the admin's
// provisioned certificate. Commands and exit codes: admin_commands.hpp.
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "admin/admin_commands.hpp"
#include "deploy_client/deploy_channel.hpp"

namespace po = boost::program_options;

namespace {

struct AdminArgs {
  std::string startup;
  flare::admin::AdminCommand command;
};

AdminArgs parse(int argc, char** argv) {
  AdminArgs a;
  std::vector<std::string> words;
  double timeout_s = 0;
  po::options_description desc("flare-admin");
  desc.add_options()
    ("startup", po::value(&a.startup)->required(), "this admin's startup folder (flare-provision)")
    ("wait", po::bool_switch(&a.command.wait), "submit: wait until the job is over")
    ("timeout", po::value(&timeout_s), "wait: give up after this many seconds (exit 1)")
    ("out", po::value(&a.command.out), "metrics, download: the file to write")
    ("model", po::value(&a.command.model), "download: final, best or a round number")
    ("words", po::value(&words), "the command and its argument");
  po::positional_options_description positional;
  positional.add("words", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(desc).positional(positional).run(), vm);
  po::notify(vm);
  if (vm.count("timeout")) a.command.timeout_s = timeout_s;
  if (words.size() > 2) throw std::runtime_error("too many arguments: " + words[2]);
  if (!words.empty()) a.command.name = words[0];
  if (words.size() > 1) a.command.target = words[1];
  if (const auto problem = flare::admin::usage_problem(a.command); !problem.empty())
    throw std::runtime_error(problem);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  AdminArgs args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "flare-admin: " << e.what() << "\nusage: flare-admin --startup DIR "
              << flare::admin::kCommandList << "\n";
    return 2;
  }
  flare::identity::StartupKit kit;
  try {
    kit = flare::deploy_client::load_kit_for(args.startup, flare::identity::Role::admin,
                                             "flare-admin");
  } catch (const std::exception& e) {
    std::cerr << "flare-admin: " << e.what() << "\n";
    return 2;
  }
  auto stub = flare::deploy::v1::Admin::NewStub(flare::deploy_client::deploy_channel(kit));
  return flare::admin::run_command(args.command, *stub, std::cout, std::cerr);
}
