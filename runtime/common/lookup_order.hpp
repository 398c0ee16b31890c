// Starting a LibTorch program faster: the order in which the dynamic linker
// searches its libraries (cmake/lookup-order.sh, docs/architecture.md).
#pragma once

#include <filesystem>
#include <string>

namespace flare::common {

// Makes the programs this process starts from now on load `program`'s
// libraries in the order recorded beside it at build time
// (<program>.lookup-order): sets LD_PRELOAD in this process's environment,
// after whatever LD_PRELOAD already names. Returns what it did, for the log:
// a missing or empty record changes nothing, and a stale one (a library no
// longer there) is ignored.
std::string use_lookup_order(const std::filesystem::path& program);

}  // namespace flare::common
