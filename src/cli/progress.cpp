#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace fp8llm::cli {

ProgressLine::ProgressLine(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), tty_(enabled && ::isatty(fileno(stderr))) {}

void ProgressLine::update(uint64_t done, uint64_t total, std::string_view detail) {
  if (!enabled_) return;
  const int pct = total ? static_cast<int>(100 * done / total) : 100;
  if (tty_) {
    const int width = 30, filled = pct * width / 100;
    // \033[K clears what a longer detail left on the line before.
    fmt::print(stderr, "\r{} [{}{}] {:3d}% {}\033[K", label_, std::string(filled, '#'),
               std::string(width - filled, ' '), pct, detail);
    if (done == total) fmt::print(stderr, "\n");
    std::fflush(stderr);
    return;
  }
  const int tenth = pct / 10;
  if (tenth == last_tenth_) return;
  last_tenth_ = tenth;
  fmt::print(stderr, "{}: {}% {}\n", label_, pct, detail);
}

}  // namespace fp8llm::cli
