# -DFLARE_SANITIZE=ON: the runtime, the plugins and the tests built with
# AddressSanitizer (LeakSanitizer included) and UndefinedBehaviorSanitizer.
# UB aborts instead of printing and going on (-fno-sanitize-recover), so a
# finding fails its test. LibTorch, gRPC and the other system libraries are not
# instrumented: ASan still sees their heap (malloc is intercepted), not their
# internals. scripts/run-tests.sh builds such a tree in build-asan/.
option(FLARE_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
if(NOT FLARE_SANITIZE)
  return()
endif()

# float-cast-overflow: a double out of an integer's range converted to it
# (seconds to milliseconds) is UB too, but gcc's "undefined" leaves it out.
set(flare_sanitizers address,undefined,float-cast-overflow)
add_compile_options(-fsanitize=${flare_sanitizers} -fno-sanitize-recover=all
  -fno-omit-frame-pointer)
add_link_options(-fsanitize=${flare_sanitizers})

# Every process the tests start (flare-run, flare-client, flare-worker, the
# tests themselves) reads these from its environment: ctest sets them, unless
# the caller already did. A report ends the process with exit code 86, which
# no flare program uses, so an expected failure cannot hide one. ASan and LSan
# reports go to sanitizer-reports/report.<program>.<pid> here, where a child's
# report outlives its test's temporary workspace and run-tests.sh finds it even
# when no test looked at that child's exit status. (gcc's UBSan runtime ignores
# log_path: its reports go to the process's stderr, i.e. a child's log.)
set(FLARE_SANITIZER_REPORTS ${CMAKE_BINARY_DIR}/sanitizer-reports)
set(suppressions ${CMAKE_CURRENT_LIST_DIR}/sanitizers)
set(common "exitcode=86:log_path=${FLARE_SANITIZER_REPORTS}/report:log_exe_name=1")
set(env_file ${CMAKE_BINARY_DIR}/sanitizer_environment.cmake)
file(WRITE ${env_file} "# Written by cmake/FlareSanitize.cmake; ctest includes it.
file(MAKE_DIRECTORY \"${FLARE_SANITIZER_REPORTS}\")
if(NOT DEFINED ENV{ASAN_OPTIONS})
  set(ENV{ASAN_OPTIONS} \"detect_leaks=1:${common}\")
endif()
if(NOT DEFINED ENV{LSAN_OPTIONS})
  set(ENV{LSAN_OPTIONS} \"suppressions=${suppressions}/lsan.supp:print_suppressions=0\")
endif()
if(NOT DEFINED ENV{UBSAN_OPTIONS})
  set(ENV{UBSAN_OPTIONS} \"halt_on_error=1:print_stacktrace=1:${common}\")
endif()
")
set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${env_file})
message(STATUS "flare: sanitized build (ASan + UBSan + LSan); reports in ${FLARE_SANITIZER_REPORTS}")
