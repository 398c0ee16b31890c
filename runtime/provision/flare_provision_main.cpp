// flare-provision PROJECT.toml [--output DIR] [--reissue NAME]... [--revoke NAME]...
// Exit codes: 0 done, 2 bad input or a refused change (nothing written),
// 1 a failure while writing (what was there before is intact).
#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "identity/identity.hpp"
#include "provision/project_file.hpp"
#include "provision/provisioner.hpp"
#include "storage/storage_error.hpp"

namespace po = boost::program_options;
using namespace flare::provision;

namespace {

void print_names(const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return;
  std::cout << what << ":";
  for (const auto& name : names) std::cout << " " << name;
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string project_file;
  ProvisionRequest request;
  std::string output;
  po::options_description options("flare-provision PROJECT.toml [options]");
  options.add_options()("help,h", "show this help")(
      "output", po::value(&output)->default_value("workspace"),
      "the folder the project's folder <output>/<project> goes into")(
      "reissue", po::value(&request.reissue)->composing(),
      "issue a new key and certificate to NAME (repeatable)")(
      "revoke", po::value(&request.revoke)->composing(),
      "revoke NAME's certificate: the CRL and the server's denied list (repeatable)");
  po::options_description hidden;
  hidden.add_options()("project", po::value(&project_file));
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("project", 1);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << options;
      return 0;
    }
    po::notify(vm);
    if (project_file.empty()) throw po::error("expected the project file, e.g. project.toml");
  } catch (const po::error& e) {
    std::cerr << "flare-provision: " << e.what() << "\n" << options;
    return 2;
  }
  request.output = output;

  try {
    Project project = read_project_file(project_file);
    ProvisionOutcome outcome = provision(project, request);
    std::cout << "project folder: " << outcome.project_folder.string() << "\n";
    if (outcome.created_ca)
      std::cout << "created the CA: " << (outcome.project_folder / "ca").string() << "\n";
    print_names("issued", outcome.issued);
    print_names("reissued", outcome.reissued);
    print_names("revoked", outcome.revoked);
    print_names("left alone (no longer in the project file; not deleted)", outcome.left_alone);
    if (outcome.issued.empty() && outcome.reissued.empty() && outcome.revoked.empty()) {
      std::cout << "no certificate issued: every participant is provisioned already\n";
    }
    return 0;
  } catch (const ProjectFileError& e) {
    std::cerr << "flare-provision: " << e.what() << "\n";
    return 2;
  } catch (const ProvisionRefused& e) {
    std::cerr << "flare-provision: refused: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "flare-provision: " << e.what() << "\n";
    return 1;
  }
}
