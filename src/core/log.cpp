#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace fp8llm {
namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};
std::atomic<LogSink> g_sink{nullptr};
std::mutex g_mu;
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }
void set_log_sink(LogSink sink) { g_sink = sink; }

void log_message(LogLevel level, std::string_view message) {
  if (LogSink sink = g_sink.load()) {
    sink(level, message);
    return;
  }
  static constexpr const char* kPrefix[] = {"debug: ", "", "warning: ", "error: ", ""};
  std::lock_guard lock(g_mu);
  std::fprintf(stderr, "%s%.*s\n", kPrefix[static_cast<int>(level)], static_cast<int>(message.size()),
               message.data());
}

}  // namespace fp8llm
