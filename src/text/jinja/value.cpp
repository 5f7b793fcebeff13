#include "text/jinja/value.h"

#include <fmt/format.h>

#include <algorithm>

#include "text/jinja/eval_error.h"
#include "text/jinja/limits.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {

Value::Value() : v_(UndefinedTag{}) {}
Value Value::undefined(std::string message) {
  Value v;
  v.v_ = UndefinedTag{std::move(message)};
  return v;
}
Value Value::none() {
  Value v;
  v.v_ = NoneTag{};
  return v;
}
Value::Value(bool v) : v_(v) {}
Value::Value(int v) : v_(static_cast<int64_t>(v)) {}
Value::Value(int64_t v) : v_(v) {}
Value::Value(double v) : v_(v) {}
Value::Value(std::string v) : v_(std::make_shared<const std::string>(std::move(v))) {}
Value::Value(std::string_view v) : v_(std::make_shared<const std::string>(v)) {}
Value::Value(const char* v) : v_(std::make_shared<const std::string>(v)) {}

namespace {

// The nesting of a new list or dict of `items`, checked against the limits.
template <typename Items, typename ValueOf>
int checked_nesting(const Items& items, const ValueOf& value_of) {
  if (items.size() > kMaxItems) {
    eval_fail("the template builds a list or dict of more than {} items", kMaxItems);
  }
  int inner = 0;
  for (const auto& item : items) inner = std::max(inner, value_of(item).nesting());
  if (inner >= kMaxValueDepth) {
    eval_fail("the template nests lists and dicts more than {} levels deep", kMaxValueDepth);
  }
  return inner + 1;
}

}  // namespace

Value Value::sequence(std::vector<Value> items, bool tuple) {
  const int nesting = checked_nesting(items, [](const Value& v) -> const Value& { return v; });
  Value v;
  v.v_ = std::make_shared<const Sequence>(Sequence{std::move(items), tuple, nesting});
  return v;
}
Value Value::list(std::vector<Value> items) {
  return sequence(std::move(items), false);
}
Value Value::tuple(std::vector<Value> items) {
  return sequence(std::move(items), true);
}
Value Value::dict(Dict items) {
  items.nesting_ =
      checked_nesting(items.items(), [](const auto& item) -> const Value& { return item.second; });
  Value v;
  v.v_ = std::make_shared<const Dict>(std::move(items));
  return v;
}
Value Value::object(std::shared_ptr<Object> object) {
  Value v;
  v.v_ = std::move(object);
  return v;
}
Value Value::function(std::string name, NativeFunction fn) {
  Value v;
  v.v_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

bool Value::is_tuple() const {
  return is_list() && std::get<std::shared_ptr<const Sequence>>(v_)->tuple;
}
int64_t Value::as_int() const {
  return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_);
}
double Value::as_double() const {
  return is_float() ? std::get<double>(v_) : static_cast<double>(as_int());
}
const std::vector<Value>& Value::as_list() const {
  return std::get<std::shared_ptr<const Sequence>>(v_)->items;
}
int Value::nesting() const {
  switch (kind()) {
    case Kind::kList:
      return std::get<std::shared_ptr<const Sequence>>(v_)->nesting;
    case Kind::kDict:
      return as_dict().nesting();
    case Kind::kObject:
      // A namespace is mutable: what it holds is not counted here, and printing it (the one
      // thing that walks into it) has its own bound.
      return 1;
    default:
      return 0;
  }
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kList:
      return std::get<std::shared_ptr<const Sequence>>(v_).get();
    case Kind::kDict:
      return std::get<std::shared_ptr<const Dict>>(v_).get();
    case Kind::kObject:
      return std::get<std::shared_ptr<Object>>(v_).get();
    case Kind::kCallable:
      return std::get<std::shared_ptr<const Callable>>(v_).get();
    default:
      return nullptr;
  }
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(value));
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_double() != 0.0;
    case Value::Kind::kString:
      return !v.as_string().empty();
    case Value::Kind::kList:
      return !v.as_list().empty();
    case Value::Kind::kDict:
      return v.as_dict().size() != 0;
    case Value::Kind::kObject:
    case Value::Kind::kCallable:
      return true;
  }
  return false;
}

namespace {

std::string repr_at(const Value& v, int depth);

// Walks into namespaces, which can hold themselves: the depth bounds the recursion.
std::string dict_repr(const Dict& d, int depth) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : d.items()) {
    if (!first) out += ", ";
    first = false;
    append_bounded(out, py::string_repr(k));
    out += ": ";
    append_bounded(out, repr_at(v, depth + 1));
  }
  return out + "}";
}

std::string repr_at(const Value& v, int depth) {
  if (depth > kMaxValueDepth) {
    eval_fail("cannot print a value nested more than {} levels deep (a namespace holding itself?)",
              kMaxValueDepth);
  }
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return py::float_repr(v.as_double());
    case Value::Kind::kString:
      return py::string_repr(v.as_string());
    case Value::Kind::kList: {
      const auto& items = v.as_list();
      std::string out = v.is_tuple() ? "(" : "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_bounded(out, repr_at(items[i], depth + 1));
      }
      if (v.is_tuple() && items.size() == 1) out += ",";
      return out + (v.is_tuple() ? ")" : "]");
    }
    case Value::Kind::kDict:
      return dict_repr(v.as_dict(), depth);
    case Value::Kind::kObject: {
      const Object& o = v.as_object();
      if (o.type_name == "LoopContext") {
        const Value* index = o.attrs.find("index");
        const Value* length = o.attrs.find("length");
        return fmt::format("<LoopContext {}/{}>", index ? to_str(*index) : "?",
                           length ? to_str(*length) : "?");
      }
      return fmt::format("<{} {}>", o.type_name, dict_repr(o.attrs, depth));
    }
    case Value::Kind::kCallable:
      return fmt::format("<function {}>", v.as_callable().name);
  }
  return "";
}

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  // Checked before going deeper: the recursion itself must stay bounded.
  if (depth >= kMaxValueDepth) {
    eval_fail("JSON nested more than {} levels deep", kMaxValueDepth);
  }
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(std::min(j.size(), kMaxItems + 1));
      for (const auto& e : j) items.push_back(from_json_at(e, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, e] : j.items()) d.append_new(k, from_json_at(e, depth + 1));
      return Value::dict(std::move(d));
    }
    default:
      eval_fail("unsupported JSON value of type {}", j.type_name());
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kString:
      return v.as_string();
    default:
      return repr(v);
  }
}

std::string repr(const Value& v) {
  return repr_at(v, 0);
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return v.is_tuple() ? "tuple" : "list";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kObject:
      return v.as_object().type_name;
    case Value::Kind::kCallable:
      return "function";
  }
  return "object";
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.items()) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    default:
      return a.identity() == b.identity();
  }
}

int compare(const Value& a, const Value& b, std::string_view op) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    const double x = a.as_double();
    const double y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined()) eval_fail("{}", a.undefined_message());
  if (b.is_undefined()) eval_fail("{}", b.undefined_message());
  eval_fail("'{}' not supported between instances of '{}' and '{}'", op, type_name(a),
            type_name(b));
}

Value from_json(const nlohmann::ordered_json& j) {
  return from_json_at(j, 0);
}

}  // namespace fp8llm::jinja
