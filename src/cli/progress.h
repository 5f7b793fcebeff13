// A progress display on stderr in the style of the load bar (load_options.cpp): on a terminal a
// bar redrawn in place, "label [#####     ]  50% detail"; otherwise a status line at every tenth
// of the work, so that a log shows a long job moving.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fp8llm::cli {

class ProgressLine {
 public:
  // Shows nothing when `enabled` is false.
  ProgressLine(std::string label, bool enabled);

  // `done` of `total` units; `detail` follows the percentage. The bar's line ends at done ==
  // total.
  void update(uint64_t done, uint64_t total, std::string_view detail);

 private:
  std::string label_;
  bool enabled_;
  bool tty_;
  int last_tenth_ = -1;
};

}  // namespace fp8llm::cli
