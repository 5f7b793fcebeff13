// Splits template source into tokens the way jinja2's lexer does, including its whitespace
// control: `{%-` / `-%}` strip whitespace, trim_blocks drops the newline after a block or comment
// tag, lstrip_blocks drops spaces and tabs between a line start and a block or comment tag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fp8llm::jinja {

enum class TokenKind {
  kData,  // text outside tags, already whitespace-controlled
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,  // text holds the decoded value
  kInteger,
  kFloat,
  kOperator,
  kEnd,
};

struct Token {
  TokenKind kind;
  std::string text;  // data, name, operator or string value
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

struct LexOptions {
  bool trim_blocks = false;
  bool lstrip_blocks = false;
};

// Errors (an unclosed tag or comment, a bad character) name `template_name` and the line.
// The result always ends with a kEnd token.
std::vector<Token> tokenize(std::string_view source, const std::string& template_name,
                            const LexOptions& options);

}  // namespace fp8llm::jinja
