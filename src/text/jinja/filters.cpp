#include "text/jinja/filters.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "text/jinja/bound_args.h"
#include "text/jinja/eval_error.h"
#include "text/jinja/json_dumps.h"
#include "text/jinja/limits.h"
#include "text/jinja/methods.h"
#include "text/jinja/operations.h"
#include "text/jinja/predicates.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {
namespace {

// Widths beyond any sensible layout are clamped rather than allocated.
constexpr int64_t kMaxIndent = 1024;

void no_args(const char* name, const Args& args) {
  (void)BoundArgs(name, args, {});
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
Value lookup_attribute(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return get_item(item, attribute);
  Value v = item;
  for (const std::string& part : py::split(attribute.as_string(), std::string("."), -1)) {
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    // Digits too long for an index cannot name an item: they look up the string key.
    errno = 0;
    const long long index = digits ? std::strtoll(part.c_str(), nullptr, 10) : 0;
    v = digits && errno == 0 ? get_item(v, Value(static_cast<int64_t>(index)))
                             : get_item(v, Value(part));
  }
  return v;
}

// The key that sort, unique, min and max compare: the attribute, lowercased unless case matters.
Value sort_key(const Value& item, const BoundArgs& a, size_t case_index, size_t attr_index) {
  Value key = a.has(attr_index) && !a.get(attr_index).is_none()
                  ? lookup_attribute(item, a.get(attr_index))
                  : item;
  if (!a.bool_or(case_index, false) && key.is_string()) key = py::lower(key.as_string());
  return key;
}

// Python's int(str): optional sign, digits with single underscores between them, surrounding
// whitespace.
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string s = py::strip(text, std::nullopt, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() &&
        std::isalnum(static_cast<unsigned char>(s[i - 1])) &&
        std::isalnum(static_cast<unsigned char>(s[i + 1]))) {
      continue;
    }
    digits.push_back(s[i]);
  }
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || *end != '\0' || std::isspace(static_cast<unsigned char>(digits[0]))) {
    return std::nullopt;
  }
  return static_cast<int64_t>(v);
}

std::optional<double> parse_float(const std::string& text) {
  std::string s = py::strip(text, std::nullopt, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  // strtod also reads hexadecimal floats, which Python's float() does not.
  if (s.find_first_of("xX") != std::string::npos) return std::nullopt;
  return v;
}

std::optional<int64_t> to_int(const Value& v, int base) {
  if (v.is_integral()) return v.as_int();
  if (v.is_float()) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return std::nullopt;
    return static_cast<int64_t>(std::trunc(d));
  }
  if (v.is_string()) {
    if (auto i = parse_int(v.as_string(), base)) return i;
    if (auto d = parse_float(v.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
      return static_cast<int64_t>(std::trunc(*d));
    }
  }
  return std::nullopt;
}

Value first_or_last(const Value& v, bool first) {
  if (v.is_list()) {
    const auto& items = v.as_list();
    if (!items.empty()) return first ? items.front() : items.back();
  } else {
    std::vector<Value> items = iterate(v);
    if (!items.empty()) return first ? items.front() : items.back();
  }
  return Value::undefined(fmt::format("No {} item, sequence was empty.", first ? "first" : "last"));
}

Value select_or_reject(const Value& v, const Args& args, bool select, bool by_attribute) {
  const char* name =
      by_attribute ? (select ? "selectattr" : "rejectattr") : (select ? "select" : "reject");
  size_t next = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) eval_fail("{}: missing parameter for attribute name", name);
    attribute = args.positional[next++];
  }
  TestFunction test = nullptr;
  Args test_args;
  if (next < args.positional.size()) {
    const Value& test_name = args.positional[next++];
    if (!test_name.is_string()) eval_fail("{}: the test name must be a string", name);
    test = find_test(test_name.as_string());
    if (!test) eval_fail("{}: no test named '{}'", name, test_name.as_string());
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next),
                                args.positional.end());
    test_args.keyword = args.keyword;
  } else if (!args.keyword.empty()) {
    eval_fail("{}() got an unexpected keyword argument '{}'", name, args.keyword[0].first);
  }
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value subject = by_attribute ? lookup_attribute(item, attribute) : item;
    const bool passed = test ? test(subject, test_args) : truthy(subject);
    if (passed == select) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value min_or_max(const Value& v, const Args& args, bool want_max) {
  BoundArgs a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  std::optional<Value> best;
  Value best_key;
  for (const Value& item : iterate(v)) {
    Value key = sort_key(item, a, 0, 1);
    if (!best || (want_max ? compare(key, best_key, ">") > 0 : compare(key, best_key, "<") < 0)) {
      best = item;
      best_key = std::move(key);
    }
  }
  if (!best) return Value::undefined("No aggregated item, sequence was empty.");
  return *best;
}

std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (const char32_t c : py::decode(s)) {
    const bool separator =
        c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py::is_space(c);
    // jinja2 applies str.upper() and str.lower(), the full mappings ("ß" -> "SS").
    std::string one;
    py::append_utf8(one, c);
    out += word_start ? py::upper(one) : py::lower(one);
    word_start = separator;
  }
  return out;
}

std::string indent(const std::string& s, const std::string& prefix, bool first, bool blank) {
  // jinja2 appends a newline first so that a trailing newline keeps its (unindented) line.
  const std::vector<std::string> lines = py::splitlines(s + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\n";
    const bool indent_line = i == 0 ? first : (blank || !lines[i].empty());
    if (indent_line) append_bounded(out, prefix);
    append_bounded(out, lines[i]);
  }
  return out;
}

Value round_value(const Value& v, const Args& args) {
  BoundArgs a("round", args, {"precision", "method"});
  const int64_t precision = a.int_or(0, 0);
  const std::string method = a.string_or(1, "common");
  if (method != "common" && method != "ceil" && method != "floor") {
    eval_fail("round(): method must be 'common', 'ceil' or 'floor'");
  }
  if (!v.is_number()) eval_fail("round(): a number is required, not {}", type_name(v));
  if (method == "common") {
    if (v.is_integral() && precision >= 0) return v.as_int();
    if (precision < 0 || precision > 300) eval_fail("round(): unsupported precision {}", precision);
    // printf rounds the exact binary value half-to-even, as Python's round() does.
    char buf[400];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), v.as_double());
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_double() * scale;
  return (method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale;
}

Value to_json(const Value& v, const Args& args) {
  BoundArgs a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions options;
  options.ensure_ascii = a.bool_or(0, false);
  if (a.has(1) && !a.get(1).is_none()) {
    const Value& indent_arg = a.get(1);
    if (indent_arg.is_string()) {
      options.indent = indent_arg.as_string();
    } else if (indent_arg.is_integral()) {
      options.indent = std::string(
          static_cast<size_t>(std::clamp<int64_t>(indent_arg.as_int(), 0, kMaxIndent)), ' ');
    } else {
      eval_fail("tojson(): indent must be an integer or a string, not {}", type_name(indent_arg));
    }
  }
  if (a.has(2) && !a.get(2).is_none()) {
    const Value& seps = a.get(2);
    if (!seps.is_list() || seps.as_list().size() != 2 || !seps.as_list()[0].is_string() ||
        !seps.as_list()[1].is_string()) {
      eval_fail("tojson(): separators must be a pair of strings");
    }
    options.item_separator = seps.as_list()[0].as_string();
    options.key_separator = seps.as_list()[1].as_string();
  }
  options.sort_keys = a.bool_or(3, false);
  return json_dumps(v, options);
}

Value map_filter(const Value& v, const Args& args) {
  std::vector<Value> out;
  if (args.positional.empty()) {
    BoundArgs a("map", args, {"attribute", "default"});
    if (!a.has(0)) eval_fail("map requires a filter argument");
    for (const Value& item : iterate(v)) {
      Value r = lookup_attribute(item, a.get(0));
      if (r.is_undefined() && a.has(1)) r = a.get(1);
      out.push_back(std::move(r));
    }
    return Value::list(std::move(out));
  }
  const Value& filter_name = args.positional[0];
  if (!filter_name.is_string()) eval_fail("map: the filter name must be a string");
  const FilterFunction filter = find_filter(filter_name.as_string());
  if (!filter) eval_fail("map: no filter named '{}'", filter_name.as_string());
  Args filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keyword = args.keyword;
  for (const Value& item : iterate(v)) out.push_back(filter(item, filter_args));
  return Value::list(std::move(out));
}

struct NamedFilter {
  std::string_view name;
  FilterFunction fn;
};

const NamedFilter kFilters[] = {
    {"abs",
     [](const Value& v, const Args& args) -> Value {
       no_args("abs", args);
       if (v.is_float()) return std::fabs(v.as_double());
       if (v.is_integral()) return v.as_int() < 0 ? negate(v) : Value(v.as_int());
       eval_fail("bad operand type for abs(): '{}'", type_name(v));
     }},
    {"attr",
     [](const Value& v, const Args& args) -> Value {
       // Python's getattr() only: methods and object attributes, never dict items.
       BoundArgs a("attr", args, {"name"}, 1);
       const std::string name = a.string(0);
       if (auto method = find_method(v, name)) return *method;
       if (v.is_object()) {
         if (const Value* attr = v.as_object().attrs.find(name)) return *attr;
       }
       return Value::undefined(
           fmt::format("'{} object' has no attribute '{}'", type_name(v), name));
     }},
    {"batch",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("batch", args, {"linecount", "fill_with"}, 1);
       const int64_t size = a.int_or(0, 1);
       if (size <= 0) eval_fail("batch(): linecount must be positive");
       std::vector<Value> out;
       std::vector<Value> current;
       for (const Value& item : iterate(v)) {
         current.push_back(item);
         if (static_cast<int64_t>(current.size()) == size) {
           out.push_back(Value::list(std::move(current)));
           current.clear();
         }
       }
       if (!current.empty()) {
         if (a.has(1) && !a.get(1).is_none()) {
           while (static_cast<int64_t>(current.size()) < size) current.push_back(a.get(1));
         }
         out.push_back(Value::list(std::move(current)));
       }
       return Value::list(std::move(out));
     }},
    {"capitalize",
     [](const Value& v, const Args& args) -> Value {
       no_args("capitalize", args);
       return py::capitalize(to_str(v));
     }},
    {"count",
     [](const Value& v, const Args& args) -> Value {
       no_args("count", args);
       return length(v);
     }},
    {"default",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("default", args, {"default_value", "boolean"});
       const bool use_default = v.is_undefined() || (a.bool_or(1, false) && !truthy(v));
       return use_default ? a.get_or(0, Value("")) : v;
     }},
    {"dictsort",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("dictsort", args, {"case_sensitive", "by", "reverse"});
       if (!v.is_dict()) eval_fail("dictsort(): can only sort a mapping, not {}", type_name(v));
       const std::string by = a.string_or(1, "key");
       if (by != "key" && by != "value") eval_fail("dictsort(): 'by' must be 'key' or 'value'");
       const bool case_sensitive = a.bool_or(0, false);
       const bool reverse = a.bool_or(2, false);
       std::vector<Value> items;
       for (const auto& [k, val] : v.as_dict().items()) items.push_back(Value::tuple({k, val}));
       auto key = [&](const Value& pair) {
         Value k = pair.as_list()[by == "key" ? 0 : 1];
         if (!case_sensitive && k.is_string()) k = py::lower(k.as_string());
         return k;
       };
       std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
         return reverse ? compare(key(y), key(x), "<") < 0 : compare(key(x), key(y), "<") < 0;
       });
       return Value::list(std::move(items));
     }},
    {"first",
     [](const Value& v, const Args& args) -> Value {
       no_args("first", args);
       return first_or_last(v, true);
     }},
    {"float",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("float", args, {"default"});
       if (v.is_number()) return v.as_double();
       if (v.is_string()) {
         if (auto d = parse_float(v.as_string())) return *d;
       }
       return a.get_or(0, Value(0.0));
     }},
    {"format",
     [](const Value& v, const Args& args) -> Value {
       if (!args.keyword.empty()) eval_fail("format(): keyword arguments are not supported");
       return binary_op(BinaryOp::kMod, Value(to_str(v)), Value::tuple(args.positional));
     }},
    {"indent",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("indent", args, {"width", "first", "blank"});
       std::string prefix(4, ' ');
       if (a.has(0)) {
         const Value& w = a.get(0);
         if (w.is_string()) {
           prefix = w.as_string();
         } else if (w.is_integral()) {
           prefix = std::string(static_cast<size_t>(std::clamp<int64_t>(w.as_int(), 0, kMaxIndent)),
                                ' ');
         } else {
           eval_fail("indent(): width must be an integer or a string, not {}", type_name(w));
         }
       }
       return indent(to_str(v), prefix, a.bool_or(1, false), a.bool_or(2, false));
     }},
    {"int",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("int", args, {"default", "base"});
       if (auto i = to_int(v, static_cast<int>(a.int_or(1, 10)))) return *i;
       return a.get_or(0, Value(0));
     }},
    {"items",
     [](const Value& v, const Args& args) -> Value {
       no_args("items", args);
       if (v.is_undefined()) return Value::list({});
       if (!v.is_dict()) eval_fail("Can only get item pairs from a mapping.");
       std::vector<Value> out;
       for (const auto& [k, val] : v.as_dict().items()) out.push_back(Value::tuple({k, val}));
       return Value::list(std::move(out));
     }},
    {"join",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("join", args, {"d", "attribute"});
       const std::string separator = a.string_or(0, "");
       std::string out;
       bool first = true;
       for (const Value& item : iterate(v)) {
         if (!first) append_bounded(out, separator);
         first = false;
         append_bounded(
             out,
             to_str(a.has(1) && !a.get(1).is_none() ? lookup_attribute(item, a.get(1)) : item));
       }
       return out;
     }},
    {"last",
     [](const Value& v, const Args& args) -> Value {
       no_args("last", args);
       return first_or_last(v, false);
     }},
    {"length",
     [](const Value& v, const Args& args) -> Value {
       no_args("length", args);
       return length(v);
     }},
    {"list",
     [](const Value& v, const Args& args) -> Value {
       no_args("list", args);
       return Value::list(iterate(v));
     }},
    {"lower",
     [](const Value& v, const Args& args) -> Value {
       no_args("lower", args);
       return py::lower(to_str(v));
     }},
    {"map", map_filter},
    {"max", [](const Value& v, const Args& args) { return min_or_max(v, args, true); }},
    {"min", [](const Value& v, const Args& args) { return min_or_max(v, args, false); }},
    {"reject",
     [](const Value& v, const Args& args) { return select_or_reject(v, args, false, false); }},
    {"rejectattr",
     [](const Value& v, const Args& args) { return select_or_reject(v, args, false, true); }},
    {"replace",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("replace", args, {"old", "new", "count"}, 2);
       const int64_t count = a.has(2) && !a.get(2).is_none() ? a.int_or(2, -1) : -1;
       return py::replace(to_str(v), to_str(a.get(0)), to_str(a.get(1)), count);
     }},
    {"reverse",
     [](const Value& v, const Args& args) -> Value {
       no_args("reverse", args);
       if (v.is_string()) {
         std::u32string text = py::decode(v.as_string());
         std::reverse(text.begin(), text.end());
         return py::encode(text);
       }
       std::vector<Value> items = iterate(v);
       std::reverse(items.begin(), items.end());
       return Value::list(std::move(items));
     }},
    {"round", round_value},
    {"select",
     [](const Value& v, const Args& args) { return select_or_reject(v, args, true, false); }},
    {"selectattr",
     [](const Value& v, const Args& args) { return select_or_reject(v, args, true, true); }},
    {"sort",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("sort", args, {"reverse", "case_sensitive", "attribute"});
       const bool reverse = a.bool_or(0, false);
       std::vector<std::pair<Value, Value>> keyed;
       for (const Value& item : iterate(v)) keyed.emplace_back(sort_key(item, a, 1, 2), item);
       std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
         return reverse ? compare(y.first, x.first, "<") < 0 : compare(x.first, y.first, "<") < 0;
       });
       std::vector<Value> out;
       for (auto& [_, item] : keyed) out.push_back(std::move(item));
       return Value::list(std::move(out));
     }},
    {"string",
     [](const Value& v, const Args& args) -> Value {
       no_args("string", args);
       return to_str(v);
     }},
    {"sum",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("sum", args, {"attribute", "start"});
       Value total = a.get_or(1, Value(0));
       for (const Value& item : iterate(v)) {
         total =
             binary_op(BinaryOp::kAdd, total,
                       a.has(0) && !a.get(0).is_none() ? lookup_attribute(item, a.get(0)) : item);
       }
       return total;
     }},
    {"title",
     [](const Value& v, const Args& args) -> Value {
       no_args("title", args);
       return jinja_title(to_str(v));
     }},
    {"tojson", to_json},
    {"trim",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("trim", args, {"chars"});
       return py::strip(to_str(v), a.optional_string(0), true, true);
     }},
    {"unique",
     [](const Value& v, const Args& args) -> Value {
       BoundArgs a("unique", args, {"case_sensitive", "attribute"});
       std::vector<Value> out;
       std::vector<Value> seen;
       for (const Value& item : iterate(v)) {
         Value key = sort_key(item, a, 0, 1);
         if (std::none_of(seen.begin(), seen.end(),
                          [&](const Value& s) { return equals(s, key); })) {
           seen.push_back(std::move(key));
           out.push_back(item);
         }
       }
       return Value::list(std::move(out));
     }},
    {"upper",
     [](const Value& v, const Args& args) -> Value {
       no_args("upper", args);
       return py::upper(to_str(v));
     }},
    {"wordcount",
     [](const Value& v, const Args& args) -> Value {
       no_args("wordcount", args);
       int64_t words = 0;
       bool in_word = false;
       for (char32_t c : py::decode(to_str(v))) {
         const bool word_char = py::is_alpha(c) || py::is_digit(c) || c == '_';
         if (word_char && !in_word) ++words;
         in_word = word_char;
       }
       return words;
     }},
};

struct Alias {
  std::string_view alias;
  std::string_view name;
};

const Alias kAliases[] = {{"d", "default"}};

}  // namespace

FilterFunction find_filter(std::string_view name) {
  for (const auto& a : kAliases) {
    if (a.alias == name) name = a.name;
  }
  for (const auto& f : kFilters) {
    if (f.name == name) return f.fn;
  }
  return nullptr;
}

}  // namespace fp8llm::jinja
