#include "plugin_host/crash_report.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace flare::host {

namespace {

constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr const char* kCrashSignalNames[] = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT"};
constexpr int kNumSignals = sizeof(kCrashSignals) / sizeof(kCrashSignals[0]);
constexpr int kMaxReportFiles = 4;

// initial-exec: reading it from a signal handler never allocates.
__attribute__((tls_model("initial-exec"))) thread_local const PluginCallMarker* t_current =
    nullptr;
// The latest call begun on any thread: a crash on a plugin's own thread (an
// OpenMP worker inside train) is that call's too.
std::atomic<const PluginCallMarker*> g_latest{nullptr};

std::atomic<bool> g_installed{false};
char g_program[64] = "flare";
struct sigaction g_previous[kNumSignals];
std::atomic<int> g_report_fds[kMaxReportFiles] = {-1, -1, -1, -1};
std::atomic<CrashSink> g_sink{nullptr};
std::atomic<void*> g_sink_context{nullptr};

int signal_index(int sig) {
  for (int i = 0; i < kNumSignals; ++i)
    if (kCrashSignals[i] == sig) return i;
  return -1;
}

// A bounded text built without allocating (async-signal-safe).
struct ReportText {
  char text[2048] = {};
  size_t length = 0;
  void add(const char* s) {
    while (s && *s && length < sizeof(text) - 1) text[length++] = *s++;
    text[length] = '\0';
  }
};

void write_all(int fd, const char* data, size_t length) {
  while (length > 0) {
    const ssize_t n = ::write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n, length -= static_cast<size_t>(n);
  }
}

// An alternate signal stack for the calling thread, unless it has one: a stack
// overflow leaves no room to run the handler on the thread's own stack.
class AlternateStack {
 public:
  AlternateStack() {
    stack_t current{};
    if (::sigaltstack(nullptr, &current) != 0 || !(current.ss_flags & SS_DISABLE)) return;
    memory_ = std::make_unique<char[]>(kSize);
    stack_t stack{};
    stack.ss_sp = memory_.get();
    stack.ss_size = kSize;
    if (::sigaltstack(&stack, nullptr) != 0) memory_.reset();
  }
  ~AlternateStack() {
    if (!memory_) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
  }
  AlternateStack(const AlternateStack&) = delete;
  AlternateStack& operator=(const AlternateStack&) = delete;

 private:
  static constexpr size_t kSize = 64 * 1024;
  std::unique_ptr<char[]> memory_;
};

}  // namespace

struct CrashHandler {
  static void on_signal(int sig, siginfo_t* info, void*) {
    const int index = signal_index(sig);
    const PluginCallMarker* call = t_current;
    const bool other_thread = call == nullptr;
    if (!call) call = g_latest.load();
    if (!call || index < 0) {
      // Not a plugin's crash: whoever handled it before does (SA_RESETHAND
      // reset ours already).
      if (index >= 0) ::sigaction(sig, &g_previous[index], nullptr);
      if (info->si_code <= 0) ::raise(sig);  // sent, not a fault: send it again
      return;
    }
    ReportText report;
    report.add("plugin '");
    report.add(call->site_.plugin);
    report.add("' (");
    report.add(call->site_.file);
    report.add(") crashed in call ");
    report.add(call->site_.call);
    report.add(" (");
    report.add(kCrashSignalNames[index]);
    if (other_thread)
      report.add(", on another thread");
    else if (call->reading_result_)
      report.add(" while the host read its result: it handed back an invalid pointer");
    report.add(")");

    if (const CrashSink sink = g_sink.load()) sink(report.text, report.length, g_sink_context.load());
    ReportText line;
    line.add(g_program);
    line.add(": ");
    line.add(report.text);
    line.add("\n");
    write_all(STDERR_FILENO, line.text, line.length);
    for (auto& fd : g_report_fds) {
      const int f = fd.load();
      if (f >= 0) write_all(f, line.text, line.length);
    }
    // SA_RESETHAND restored the default action: a fault ends the process when
    // the instruction runs again on return; a sent signal (abort) is re-sent.
    if (info->si_code <= 0) ::raise(sig);
  }
};

void install_plugin_crash_reports(const char* program) {
  std::strncpy(g_program, program, sizeof(g_program) - 1);
  if (g_installed.exchange(true)) return;
  struct sigaction action {};
  action.sa_sigaction = &CrashHandler::on_signal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < kNumSignals; ++i) ::sigaction(kCrashSignals[i], &action, &g_previous[i]);
}

CrashReportFile::CrashReportFile(const std::filesystem::path& file)
    : fd_(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) {
  if (fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "opening " + file.string());
  for (auto& slot : g_report_fds) {
    int free = -1;
    if (slot.compare_exchange_strong(free, fd_)) return;
  }
  // Every slot taken: reports still reach stderr.
}

CrashReportFile::~CrashReportFile() {
  for (auto& slot : g_report_fds) {
    int mine = fd_;
    if (slot.compare_exchange_strong(mine, -1)) break;
  }
  ::close(fd_);
}

void set_crash_sink(CrashSink sink, void* context) {
  g_sink.store(nullptr);
  g_sink_context.store(context);
  g_sink.store(sink);
}

PluginCallMarker::PluginCallMarker(const PluginCallSite& site) : site_(site), outer_(t_current) {
  thread_local AlternateStack alternate_stack;
  t_current = this;
  g_latest.store(this);
}

PluginCallMarker::~PluginCallMarker() {
  t_current = outer_;
  const PluginCallMarker* self = this;
  g_latest.compare_exchange_strong(self, outer_);
}

}  // namespace flare::host
