#include "text/regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace fp8llm {
namespace {

// Unicode White_Space (PropList.txt), as PCRE2 class items.
constexpr std::string_view kWhiteSpaceItems =
    R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0)
    return fmt::format("code {}", code);
  return reinterpret_cast<const char*>(buffer);
}

// One match-data block per thread (only the whole-match offsets are read, so one pair suffices
// for every pattern) and a JIT stack allocated when the default 32 KiB one runs out.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
  void grow_jit_stack() {
    if (jit_stack) return;
    jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

std::string rewrite_for_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's') {
        out +=
            in_class ? fmt::format("{}", kWhiteSpaceItems) : fmt::format("[{}]", kWhiteSpaceItems);
      } else if (e == 'S' && !in_class) {
        out += fmt::format("[^{}]", kWhiteSpaceItems);
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      // A POSIX class such as [:alpha:] inside a bracket expression.
      const size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view pattern, bool literal, std::string where)
    : code_(std::make_unique<Code>()),
      pattern_(literal ? std::string(pattern) : rewrite_for_pcre2(pattern)),
      where_(std::move(where)) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2 accepts only a few options next to PCRE2_LITERAL, and UCP means nothing there.
  const uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                              options, &error, &offset, nullptr);
  if (!code_->code) {
    fail("{}: cannot compile regex '{}': {} (at offset {} of the pattern given to PCRE2)", where_,
         pattern, pcre2_message(error), offset);
  }
  // Without JIT support the interpreter runs the same pattern, only slower.
  (void)pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  out.clear();
  ThreadMatchState& state = thread_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0;
  size_t last_match_end = SIZE_MAX;
  while (search_from <= text.size()) {
    // The caller has validated the UTF-8 once; PCRE2 would otherwise re-check it on every call.
    int rc = pcre2_match(code_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                         state.data, state.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !state.jit_stack) {
      state.grow_jit_stack();
      rc = pcre2_match(code_->code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK,
                       state.data, state.context);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    // rc == 0 means "matched, but only the first pair fits in the match data", which is enough.
    if (rc < 0) fail("{}: regex match failed: {}", where_, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    const size_t begin = ovector[0], end = ovector[1];
    if (begin == end && end == last_match_end) {
      // Step over one character and search again.
      if (search_from >= text.size()) break;
      ++search_from;
      while (search_from < text.size() && (static_cast<uint8_t>(text[search_from]) & 0xC0) == 0x80)
        ++search_from;
      continue;
    }
    out.emplace_back(begin, end);
    last_match_end = end;
    search_from = end;
  }
}

}  // namespace fp8llm
