// A crash inside a plugin call (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) is
// reported as the plugin's: "<program>: plugin 'X' (file) crashed in call Y
// (SIGSEGV)" on stderr, in every CrashReportFile and to the crash sink, then the
// signal ends the process as it would have. The host's call wrapper
// (PluginCall) marks the call in progress; the handler only reads that marker
// and writes preformatted text with write(2), so it stays async-signal-safe.
// A crash outside plugin calls goes to the handler that was there before.
#pragma once

#include <cstddef>
#include <filesystem>

namespace flare::host {

// Installs the handler once per process; `program` prefixes every report
// (e.g. "flare-run"). Later calls only change the prefix.
void install_plugin_crash_reports(const char* program);

// While alive, crash reports are also appended to `file` (e.g. the server's
// log, which is not the process's stderr). Not copyable.
class CrashReportFile {
 public:
  explicit CrashReportFile(const std::filesystem::path& file);
  ~CrashReportFile();
  CrashReportFile(const CrashReportFile&) = delete;
  CrashReportFile& operator=(const CrashReportFile&) = delete;

 private:
  int fd_ = -1;
};

// Called from the signal handler with the report (no program prefix, no line
// end), so it must be async-signal-safe: the worker copies it into its
// heartbeat, where its supervisor's failure report picks it up. One sink per
// process; nullptr removes it.
using CrashSink = void (*)(const char* report, std::size_t length, void* context);
void set_crash_sink(CrashSink sink, void* context);

// What a crash handler needs to name a plugin call. The strings must outlive
// the marker (the plugin's name and path live as long as its library).
struct PluginCallSite {
  const char* plugin;
  const char* file;
  const char* call;
};

// Marks the current thread as inside `site` for the crash handler, from
// construction to destruction; calls nest. reading_result(): the plugin has
// returned and the host is reading what it handed back, so a fault now is an
// invalid pointer from the plugin. Also gives the thread an alternate signal
// stack, so a stack overflow in a plugin is reported too.
class PluginCallMarker {
 public:
  explicit PluginCallMarker(const PluginCallSite& site);
  ~PluginCallMarker();
  PluginCallMarker(const PluginCallMarker&) = delete;
  PluginCallMarker& operator=(const PluginCallMarker&) = delete;

  void reading_result() noexcept { reading_result_ = true; }

 private:
  friend struct CrashHandler;
  PluginCallSite site_;
  volatile bool reading_result_ = false;
  const PluginCallMarker* outer_;  // the thread's enclosing call, if any
};

}  // namespace flare::host
