// The post-processor of tokenizer.json: the special tokens put around an encoded sequence when
// encode() is asked to add them (e.g. Llama-3's <|begin_of_text|> in front). Supported:
// TemplateProcessing (its "single" template; "pair" is not used since only single sequences are
// encoded), ByteLevel (changes offsets only, so nothing here) and Sequence of these.
#pragma once

#include <cstdint>
#include <vector>

#include "core/json_view.h"

namespace fp8llm {

class PostProcessor {
 public:
  // `node` is the "post_processor" member; null adds nothing.
  static PostProcessor parse(const JsonView& node);

  // Wraps `ids` in the special tokens of every template, in order.
  void add_special_tokens(std::vector<int32_t>& ids) const;

 private:
  struct Template {
    std::vector<int32_t> before, after;  // ids around the sequence
  };
  static void parse_into(const JsonView& node, std::vector<Template>& out);

  std::vector<Template> templates_;
};

}  // namespace fp8llm
