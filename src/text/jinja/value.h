// Values of the template language: Python's data model, narrowed to what chat templates use.
// Lists and dicts are immutable once built (templates render in an immutable sandbox), so they
// are shared, not copied; namespace() objects are the one mutable kind.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fp8llm::jinja {

class Value;
class Dict;
struct Sequence;
struct Object;
struct Callable;

// Call arguments as Python passes them: positional, then keyword.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFunction = std::function<Value(Args&)>;

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kObject,
    kCallable
  };

  // Undefined: what a missing variable, key or attribute evaluates to. Falsy, prints as "", and
  // most operations on it fail with `message` (e.g. "'x' is undefined").
  Value();
  static Value undefined(std::string message);
  static Value none();
  // Implicit, like Python literals: a C++ bool, integer, float or string is that value.
  Value(bool v);
  Value(int v);
  Value(int64_t v);
  Value(double v);
  Value(std::string v);
  Value(std::string_view v);
  Value(const char* v);
  // Lists and dicts hold at most kMaxItems and nest at most kMaxValueDepth deep (limits.h): the
  // limits are checked here, where every one is made (an EvalError otherwise).
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value dict(Dict items);
  static Value object(std::shared_ptr<Object> object);
  static Value function(std::string name, NativeFunction fn);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_integral() const { return is_bool() || is_int(); }  // Python's bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }  // lists and tuples
  bool is_tuple() const;
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_callable() const { return kind() == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;    // bool or int
  double as_double() const;  // any number
  const std::string& as_string() const { return *std::get<std::shared_ptr<const std::string>>(v_); }
  const std::vector<Value>& as_list() const;
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Object& as_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  const std::string& undefined_message() const { return std::get<UndefinedTag>(v_).message; }

  // Identity of shared objects, for Python's `is` on mutable values.
  const void* identity() const;
  // Lists and dicts inside each other: 0 for a scalar, 1 for a list of scalars or an object.
  int nesting() const;

 private:
  static Value sequence(std::vector<Value> items, bool tuple);

  struct UndefinedTag {
    std::string message;
  };
  struct NoneTag {};
  // Strings are shared like lists: copying a value never copies its text.
  std::variant<UndefinedTag, NoneTag, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const Sequence>, std::shared_ptr<const Dict>,
               std::shared_ptr<Object>, std::shared_ptr<const Callable>>
      v_;
};

// An insertion-ordered map with string keys (JSON objects, dict literals, object attributes).
// Lookups are linear: template dicts are small.
class Dict {
 public:
  // As Value::nesting() of the dict (set when it becomes a value).
  int nesting() const { return nesting_; }
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);  // replaces an existing key in place
  // Appends a key known to be new (e.g. from a JSON object, whose keys are unique).
  void append_new(std::string key, Value value) {
    items_.emplace_back(std::move(key), std::move(value));
  }
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  friend class Value;
  std::vector<std::pair<std::string, Value>> items_;
  int nesting_ = 1;
};

struct Sequence {
  std::vector<Value> items;
  bool tuple = false;
  int nesting = 1;
};

// An object with attributes: namespace() (attributes assignable with `set ns.x = ...`) or a
// for loop's `loop`.
struct Object {
  std::string type_name;
  Dict attrs;
  bool assignable = false;
};

struct Callable {
  std::string name;
  NativeFunction fn;
};

// Python semantics.
bool truthy(const Value& v);
std::string to_str(const Value& v);  // str(v); Undefined prints as ""
std::string repr(const Value& v);
std::string type_name(const Value& v);  // "str", "int", "NoneType", ...
bool equals(const Value& a, const Value& b);
// <0, 0, >0 for a < b, a == b, a > b; fails with Python's TypeError text for unorderable
// operands, naming `op`.
int compare(const Value& a, const Value& b, std::string_view op);

// JSON input (ordered, so that dicts keep their keys' order as Python's json.loads does).
Value from_json(const nlohmann::ordered_json& j);

}  // namespace fp8llm::jinja
