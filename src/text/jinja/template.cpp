#include "text/jinja/template.h"

#include "text/jinja/interpreter.h"
#include "text/jinja/lexer.h"
#include "text/jinja/parser.h"

namespace fp8llm::jinja {

Template::Template(std::string_view source, TemplateOptions options)
    : options_(std::move(options)) {
  const std::vector<Token> tokens =
      tokenize(source, options_.name, LexOptions{options_.trim_blocks, options_.lstrip_blocks});
  body_ = std::make_shared<const Body>(parse(tokens, options_.name));
}

std::string Template::render(const Dict& variables) const {
  return jinja::render(*body_, variables, options_.name);
}

}  // namespace fp8llm::jinja
