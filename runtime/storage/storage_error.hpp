// The one exception type of workspace storage; its message names the file and
// what is wrong with it.
#pragma once

#include <stdexcept>

namespace flare::storage {

class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace flare::storage
