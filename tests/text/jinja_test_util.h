// Shared by the Jinja tests: table rows of template, variables and expected result, rendered with
// the Environment options Hugging Face transformers uses for chat templates (trim_blocks and
// lstrip_blocks on).
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ostream>
#include <string>

#include "core/error.h"
#include "text/jinja/template.h"

namespace fp8llm::jinja_test {

struct RenderCase {
  const char* name;
  const char* source;
  const char* variables;  // a JSON object
  const char* expected;   // the text, or in a table of errors the whole fp8llm::Error message
};

// gtest names each parameterized case after its row: Suite/Name instead of Suite/0.
inline void PrintTo(const RenderCase& c, std::ostream* os) {
  *os << c.name;
}
inline std::string case_name(const testing::TestParamInfo<RenderCase>& p) {
  return p.param.name;
}

inline jinja::Template hf_template(const std::string& source) {
  return jinja::Template(source,
                         jinja::TemplateOptions{"t", /*trim_blocks=*/true, /*lstrip_blocks=*/true});
}

// `source` rendered with `variables`, a JSON object.
inline std::string render(const std::string& source, const std::string& variables = "{}") {
  return hf_template(source).render(
      jinja::from_json(nlohmann::ordered_json::parse(variables)).as_dict());
}

// The message of the fp8llm::Error raised while parsing or rendering; "" if none.
inline std::string error_of(const std::string& source, const std::string& variables = "{}") {
  try {
    render(source, variables);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace fp8llm::jinja_test
