#include "cli/text_session.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "text/text_stream.h"

namespace fp8llm::cli {

TextSession::Reply TextSession::generate(Engine& engine, const std::vector<int32_t>& prompt,
                                         GenerationOptions options,
                                         const std::vector<std::string>& stop_strings,
                                         std::FILE* out) const {
  for (int32_t id : text_.eos_token_ids()) {
    if (std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), id) ==
        options.stop_token_ids.end())
      options.stop_token_ids.push_back(id);
  }
  TextStream stream(text_.tokenizer(), stop_strings);
  const auto write = [out](const std::string& piece) {
    if (piece.empty()) return;
    // A full disk or a closed pipe stops generation: nobody would read the rest.
    if (std::fwrite(piece.data(), 1, piece.size(), out) != piece.size() || std::fflush(out) != 0) {
      fail("{}: write failed: {}", out == stdout ? "standard output" : "output",
           std::strerror(errno));
    }
  };
  Reply reply;
  reply.result = engine.generate(prompt, options, [&](int32_t id) {
    write(stream.put(id));
    return !stream.stopped();
  });
  write(stream.finish());
  reply.text = stream.text();
  if (stream.stopped()) reply.result.finish_reason = FinishReason::Stop;
  return reply;
}

}  // namespace fp8llm::cli
