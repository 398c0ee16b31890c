// Ending a process that loaded LibTorch without its static destructors.
#pragma once

#include <cstdio>
#include <cstdlib>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define FLARE_LEAK_CHECK_AT_EXIT 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FLARE_LEAK_CHECK_AT_EXIT)
#define FLARE_LEAK_CHECK_AT_EXIT 1
#endif
#if FLARE_LEAK_CHECK_AT_EXIT
#include <sanitizer/lsan_interface.h>
#endif

namespace flare::common {

// Ends the process with `code` once main's own objects are destroyed (files
// closed, plugins destroyed, sockets shut). What it skips are the static
// destructors of LibTorch and the ~340 libraries it loads: 0.1 s at the end of
// every run that nothing needs. A sanitizer build still checks for leaks,
// which the skipped exit handlers would have done.
[[noreturn]] inline void exit_skipping_static_destructors(int code) {
  std::fflush(nullptr);
#if FLARE_LEAK_CHECK_AT_EXIT
  __lsan_do_leak_check();
#endif
  std::_Exit(code);
}

}  // namespace flare::common
