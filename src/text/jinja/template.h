// A compiled jinja2 template: parse once, render many times with different variables.
// The supported language is the subset that model chat templates use; see parser.h for the
// statements and filters.h / predicates.h / methods.h for the library.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/jinja/value.h"

namespace fp8llm::jinja {

struct Stmt;

struct TemplateOptions {
  std::string name = "template";  // errors read "<name> line <n>: ..."
  bool trim_blocks = false;       // jinja2's Environment options of the same names
  bool lstrip_blocks = false;
};

class Template {
 public:
  // Throws fp8llm::Error for malformed or unsupported template source.
  explicit Template(std::string_view source, TemplateOptions options = {});

  // Throws fp8llm::Error for errors while rendering (undefined values misused, type errors,
  // raise_exception called by the template, a limit of limits.h exceeded), naming the line.
  std::string render(const Dict& variables) const;

  const std::string& name() const { return options_.name; }

 private:
  TemplateOptions options_;
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
};

}  // namespace fp8llm::jinja
