#include "text/jinja/methods.h"

#include <algorithm>

#include <fmt/format.h>

#include "text/jinja/bound_args.h"
#include "text/jinja/eval_error.h"
#include "text/jinja/limits.h"
#include "text/jinja/operations.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {
namespace {

using StringMethod = Value (*)(const std::string& self, const Args& args);

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// startswith/endswith accept a string or a tuple of strings.
bool affix_match(const std::string& self, const Value& affix, bool prefix, const char* name) {
  auto one = [&](const Value& v) {
    if (!v.is_string()) {
      eval_fail("{} first arg must be str or a tuple of str, not {}", name, type_name(v));
    }
    const std::string& a = v.as_string();
    if (a.size() > self.size()) return false;
    return prefix ? self.compare(0, a.size(), a) == 0
                  : self.compare(self.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  }
  return one(affix);
}

std::optional<std::string> separator(const BoundArgs& a, size_t i) {
  auto sep = a.optional_string(i);
  if (sep && sep->empty()) eval_fail("empty separator");
  return sep;
}

template <typename Pred>
Value all_chars(const std::string& self, Pred pred) {
  if (self.empty()) return false;
  const std::u32string text = py::decode(self);
  return std::all_of(text.begin(), text.end(), pred);
}

// Index, in code points, of a byte offset into valid text.
int64_t code_point_index(const std::string& self, size_t byte_offset) {
  if (byte_offset == std::string::npos) return -1;
  return static_cast<int64_t>(py::length(std::string_view(self).substr(0, byte_offset)));
}

// str.format with positional ({} {0}) and keyword ({name}) fields and !s / !r conversions.
std::string str_format(const std::string& self, const Args& args) {
  std::string out;
  size_t auto_index = 0;
  size_t i = 0;
  while (i < self.size()) {
    const char c = self[i];
    if (c == '}') {
      if (i + 1 < self.size() && self[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      eval_fail("Single '}}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < self.size() && self[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    const size_t close = self.find('}', i);
    if (close == std::string::npos) eval_fail("Single '{{' encountered in format string");
    std::string field = self.substr(i + 1, close - i - 1);
    i = close + 1;
    char conversion = 's';
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      eval_fail("str.format(): format specs ('{}') are not supported", field.substr(colon));
    }
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size() || (field[bang + 1] != 's' && field[bang + 1] != 'r')) {
        eval_fail("str.format(): unsupported conversion in '{{{}}}'", field);
      }
      conversion = field[bang + 1];
      field.resize(bang);
    }
    const Value* value = nullptr;
    if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
      const size_t index = field.empty()      ? auto_index++
                           : field.size() > 9 ? args.positional.size()
                                              : std::strtoul(field.c_str(), nullptr, 10);
      if (index >= args.positional.size()) {
        eval_fail("Replacement index {} out of range for positional args tuple",
                  field.empty() ? std::to_string(index) : field);
      }
      value = &args.positional[index];
    } else {
      for (const auto& [name, v] : args.keyword) {
        if (name == field) value = &v;
      }
      if (!value) eval_fail("str.format(): no argument named '{}'", field);
    }
    append_bounded(out, conversion == 'r' ? repr(*value) : to_str(*value));
  }
  return out;
}

struct NamedStringMethod {
  std::string_view name;
  StringMethod fn;
};

const NamedStringMethod kStringMethods[] = {
    {"startswith",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("startswith", args, {"prefix"}, 1);
       return affix_match(s, a.get(0), true, "startswith");
     }},
    {"endswith",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("endswith", args, {"suffix"}, 1);
       return affix_match(s, a.get(0), false, "endswith");
     }},
    {"split",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("split", args, {"sep", "maxsplit"});
       return string_list(py::split(s, separator(a, 0), a.int_or(1, -1)));
     }},
    {"rsplit",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("rsplit", args, {"sep", "maxsplit"});
       return string_list(py::rsplit(s, separator(a, 0), a.int_or(1, -1)));
     }},
    {"splitlines",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("splitlines", args, {"keepends"});
       return string_list(py::splitlines(s, a.bool_or(0, false)));
     }},
    {"strip",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("strip", args, {"chars"});
       return py::strip(s, a.optional_string(0), true, true);
     }},
    {"lstrip",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("lstrip", args, {"chars"});
       return py::strip(s, a.optional_string(0), true, false);
     }},
    {"rstrip",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("rstrip", args, {"chars"});
       return py::strip(s, a.optional_string(0), false, true);
     }},
    {"replace",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("replace", args, {"old", "new", "count"}, 2);
       return py::replace(s, a.string(0), a.string(1), a.int_or(2, -1));
     }},
    {"removeprefix",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("removeprefix", args, {"prefix"}, 1);
       const std::string p = a.string(0);
       return s.compare(0, p.size(), p) == 0 ? s.substr(p.size()) : s;
     }},
    {"removesuffix",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("removesuffix", args, {"suffix"}, 1);
       const std::string p = a.string(0);
       const bool ends = p.size() <= s.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
       return ends && !p.empty() ? s.substr(0, s.size() - p.size()) : s;
     }},
    {"upper",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("upper", args, {});
       return py::upper(s);
     }},
    {"lower",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("lower", args, {});
       return py::lower(s);
     }},
    {"title",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("title", args, {});
       return py::title(s);
     }},
    {"capitalize",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("capitalize", args, {});
       return py::capitalize(s);
     }},
    {"find",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("find", args, {"sub"}, 1);
       return code_point_index(s, s.find(a.string(0)));
     }},
    {"rfind",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("rfind", args, {"sub"}, 1);
       return code_point_index(s, s.rfind(a.string(0)));
     }},
    {"count",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("count", args, {"sub"}, 1);
       const std::string sub = a.string(0);
       if (sub.empty()) return static_cast<int64_t>(py::length(s)) + 1;
       int64_t n = 0;
       for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) {
         ++n;
       }
       return n;
     }},
    {"join",
     [](const std::string& s, const Args& args) -> Value {
       BoundArgs a("join", args, {"iterable"}, 1);
       std::string out;
       bool first = true;
       for (const Value& v : iterate(a.get(0))) {
         if (!v.is_string()) {
           eval_fail("sequence item: expected str instance, {} found", type_name(v));
         }
         if (!first) append_bounded(out, s);
         first = false;
         append_bounded(out, v.as_string());
       }
       return out;
     }},
    {"format", [](const std::string& s, const Args& args) -> Value { return str_format(s, args); }},
    {"isdigit",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("isdigit", args, {});
       return all_chars(s, py::is_digit);
     }},
    {"isalpha",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("isalpha", args, {});
       return all_chars(s, py::is_alpha);
     }},
    {"isalnum",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("isalnum", args, {});
       return all_chars(s, [](char32_t c) { return py::is_alpha(c) || py::is_digit(c); });
     }},
    {"isspace",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("isspace", args, {});
       return all_chars(s, py::is_space);
     }},
    {"islower",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("islower", args, {});
       const std::u32string t = py::decode(s);
       return std::any_of(t.begin(), t.end(), py::is_lower) &&
              std::none_of(t.begin(), t.end(), py::is_upper);
     }},
    {"isupper",
     [](const std::string& s, const Args& args) -> Value {
       (void)BoundArgs("isupper", args, {});
       const std::u32string t = py::decode(s);
       return std::any_of(t.begin(), t.end(), py::is_upper) &&
              std::none_of(t.begin(), t.end(), py::is_lower);
     }},
};

std::optional<Value> dict_method(const Value& self, std::string_view name) {
  if (name == "items") {
    return Value::function("items", [self](Args& args) {
      (void)BoundArgs("items", args, {});
      std::vector<Value> out;
      for (const auto& [k, v] : self.as_dict().items()) out.push_back(Value::tuple({k, v}));
      return Value::list(std::move(out));
    });
  }
  if (name == "keys") {
    return Value::function("keys", [self](Args& args) {
      (void)BoundArgs("keys", args, {});
      return Value::list(iterate(self));
    });
  }
  if (name == "values") {
    return Value::function("values", [self](Args& args) {
      (void)BoundArgs("values", args, {});
      std::vector<Value> out;
      for (const auto& [k, v] : self.as_dict().items()) out.push_back(v);
      return Value::list(std::move(out));
    });
  }
  if (name == "get") {
    return Value::function("get", [self](Args& args) {
      BoundArgs a("get", args, {"key", "default"}, 1);
      if (a.get(0).is_string()) {
        if (const Value* v = self.as_dict().find(a.get(0).as_string())) return *v;
      }
      return a.get_or(1, Value::none());
    });
  }
  return std::nullopt;
}

std::optional<Value> list_method(const Value& self, std::string_view name) {
  if (name == "index") {
    return Value::function("index", [self](Args& args) {
      BoundArgs a("index", args, {"value"}, 1);
      const auto& items = self.as_list();
      for (size_t i = 0; i < items.size(); ++i) {
        if (equals(items[i], a.get(0))) return Value(static_cast<int64_t>(i));
      }
      eval_fail("{} is not in list", repr(a.get(0)));
    });
  }
  if (name == "count") {
    return Value::function("count", [self](Args& args) {
      BoundArgs a("count", args, {"value"}, 1);
      const auto& items = self.as_list();
      return Value(static_cast<int64_t>(std::count_if(
          items.begin(), items.end(), [&](const Value& v) { return equals(v, a.get(0)); })));
    });
  }
  return std::nullopt;
}

}  // namespace

std::optional<Value> find_method(const Value& receiver, std::string_view name) {
  if (receiver.is_string()) {
    for (const auto& m : kStringMethods) {
      if (m.name == name) {
        return Value::function(std::string(name), [self = receiver.as_string(), fn = m.fn](
                                                      Args& args) { return fn(self, args); });
      }
    }
    return std::nullopt;
  }
  if (receiver.is_dict()) return dict_method(receiver, name);
  if (receiver.is_list()) return list_method(receiver, name);
  return std::nullopt;
}

}  // namespace fp8llm::jinja
