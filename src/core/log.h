// Messages to stderr for the person running fp8llm. stdout is kept for results (generated text,
// JSON) so that it can be piped.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace fp8llm {

enum class LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3, Quiet = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, std::string_view message);

template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() <= LogLevel::Info) log_message(LogLevel::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warning(fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() <= LogLevel::Warning)
    log_message(LogLevel::Warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() <= LogLevel::Debug) log_message(LogLevel::Debug, fmt::format(f, std::forward<Args>(args)...));
}

// Lets tests capture what was logged (e.g. the load-resolution reason). Pass nullptr to restore.
using LogSink = void (*)(LogLevel, std::string_view);
void set_log_sink(LogSink sink);

}  // namespace fp8llm
