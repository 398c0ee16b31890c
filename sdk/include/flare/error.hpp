// The exception a C++ plugin throws; the SDK's glue (plugin.hpp) turns it into
// a flare_error with its code. Header-only; part of the C++ SDK.
#pragma once

#include <flare/plugin_abi.h>

#include <stdexcept>
#include <string>

namespace flare {

class Error : public std::runtime_error {
 public:
  Error(flare_error_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  flare_error_code code() const noexcept { return code_; }

 private:
  flare_error_code code_;
};

}  // namespace flare
