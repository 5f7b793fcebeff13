#include "text/jinja/json_dumps.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "text/jinja/eval_error.h"
#include "text/jinja/limits.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {
namespace {

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  for (char32_t c : py::decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", static_cast<uint32_t>(0xD800 | (v >> 10)),
                               static_cast<uint32_t>(0xDC00 | (v & 0x3FF)));
          } else {
            out += fmt::format("\\u{:04x}", static_cast<uint32_t>(c));
          }
        } else {
          py::append_utf8(out, c);
        }
    }
  }
  out.push_back('"');
  // Escapes make at most six bytes of one: checked once per string.
  check_string_size(out.size());
}

class Dumper {
 public:
  explicit Dumper(const JsonDumpOptions& options)
      : options_(options),
        item_separator_(options.item_separator.value_or(options.indent ? "," : ", ")) {}

  void dump(std::string& out, const Value& v, int depth) {
    switch (v.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return;
      case Value::Kind::kBool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out += std::to_string(v.as_int());
        return;
      case Value::Kind::kFloat: {
        const double d = v.as_double();
        if (std::isnan(d)) {
          out += "NaN";
        } else if (std::isinf(d)) {
          out += d < 0 ? "-Infinity" : "Infinity";
        } else {
          out += py::float_repr(d);
        }
        return;
      }
      case Value::Kind::kString:
        dump_string(out, v.as_string(), options_.ensure_ascii);
        return;
      case Value::Kind::kList: {
        const auto& items = v.as_list();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) append_bounded(out, item_separator_);
          newline(out, depth + 1);
          dump(out, items[i], depth + 1);
        }
        newline(out, depth);
        out.push_back(']');
        return;
      }
      case Value::Kind::kDict: {
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& item : v.as_dict().items()) items.push_back(&item);
        if (items.empty()) {
          out += "{}";
          return;
        }
        if (options_.sort_keys) {
          std::stable_sort(items.begin(), items.end(),
                           [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        out.push_back('{');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) append_bounded(out, item_separator_);
          newline(out, depth + 1);
          dump_string(out, items[i]->first, options_.ensure_ascii);
          append_bounded(out, options_.key_separator);
          dump(out, items[i]->second, depth + 1);
        }
        newline(out, depth);
        out.push_back('}');
        return;
      }
      default:
        eval_fail("Object of type {} is not JSON serializable", type_name(v));
    }
  }

 private:
  void newline(std::string& out, int depth) const {
    if (!options_.indent) return;
    out.push_back('\n');
    for (int i = 0; i < depth; ++i) append_bounded(out, *options_.indent);
  }

  const JsonDumpOptions& options_;
  std::string item_separator_;
};

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  Dumper(options).dump(out, v, 0);
  return out;
}

}  // namespace fp8llm::jinja
