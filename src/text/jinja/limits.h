// What one render may do. A chat template renders a conversation in thousands of steps, into well
// under a megabyte, with values nested a few levels deep; a template that loops without end,
// builds strings or lists without bound, or nests values or calls deeply fails with an error
// naming the limit, instead of running for hours, exhausting memory or overflowing the stack.
// (jinja2's own sandbox bounds only range().)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "text/jinja/eval_error.h"

namespace fp8llm::jinja {

// Units of work per render, each worth roughly the same time: one per statement and expression,
// one per 64 bytes of every string an expression yields and of the text written, one per 16 items
// of every list or dict it yields (looking a value up counts its size: whatever reads it may read
// all of it), and more for a loop iteration or a macro call (each makes a scope and a dozen
// values). A budget of well under a second; a 2000-message conversation through a real template
// takes about a fifth of it.
inline constexpr int64_t kMaxWork = 5'000'000;
inline constexpr int64_t kLoopIterationWork = 64;
inline constexpr int64_t kMacroCallWork = 64;
// The longest string a render builds, its output included (a million-token context is about
// 4 MiB of text).
inline constexpr size_t kMaxStringBytes = size_t{32} << 20;
// The most items of one list or dict.
inline constexpr size_t kMaxItems = size_t{1} << 22;
// Lists and dicts inside each other (JSON messages with tool schemas nest a few dozen levels).
inline constexpr int kMaxValueDepth = 256;
// Macro calls inside each other.
inline constexpr int kMaxMacroDepth = 100;
// jinja2's sandbox refuses larger ranges.
inline constexpr int64_t kMaxRange = 100000;
// Widths and precisions of printf-style formats ('%5.2f' % x): every number fits in 512 bytes.
inline constexpr int64_t kMaxFormatWidth = 100;

// Fails unless a string of `size` bytes may be built.
inline void check_string_size(size_t size) {
  if (size > kMaxStringBytes) {
    eval_fail("the template builds a string of more than {} bytes (limit {} MiB)", kMaxStringBytes,
              kMaxStringBytes >> 20);
  }
}

// out += piece, failing first when `out` would grow past kMaxStringBytes.
inline void append_bounded(std::string& out, std::string_view piece) {
  if (piece.size() > kMaxStringBytes || out.size() > kMaxStringBytes - piece.size()) {
    check_string_size(out.size() + piece.size());
  }
  out.append(piece);
}

}  // namespace fp8llm::jinja
