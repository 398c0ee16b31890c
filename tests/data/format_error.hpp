// The message of the CifarFormatError a call throws, for the data tests.
#pragma once

#include <functional>
#include <string>

#include "cifar_format.hpp"

namespace flare::testing {

inline std::string format_error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const cifar::CifarFormatError& e) {
    return e.what();
  }
  return "(no CifarFormatError)";
}

}  // namespace flare::testing
