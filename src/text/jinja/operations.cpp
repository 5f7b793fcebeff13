#include "text/jinja/operations.h"

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "text/jinja/eval_error.h"
#include "text/jinja/limits.h"
#include "text/jinja/methods.h"
#include "text/jinja/python_str.h"

namespace fp8llm::jinja {
namespace {

const char* op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kFloorDiv:
      return "//";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "**";
  }
  return "?";
}

[[noreturn]] void unsupported_operands(BinaryOp op, const Value& a, const Value& b) {
  eval_fail("unsupported operand type(s) for {}: '{}' and '{}'", op_symbol(op), type_name(a),
            type_name(b));
}

[[noreturn]] void overflow() {
  eval_fail("integer overflow (integers are limited to 64 bits)");
}

template <typename Op>
int64_t checked(Op op, int64_t x, int64_t y) {
  int64_t r = 0;
  if (op(x, y, &r)) overflow();
  return r;
}

bool add(int64_t x, int64_t y, int64_t* r) {
  return __builtin_add_overflow(x, y, r);
}
bool sub(int64_t x, int64_t y, int64_t* r) {
  return __builtin_sub_overflow(x, y, r);
}
bool mul(int64_t x, int64_t y, int64_t* r) {
  return __builtin_mul_overflow(x, y, r);
}

Value int_op(BinaryOp op, int64_t x, int64_t y) {
  switch (op) {
    case BinaryOp::kAdd:
      return checked(add, x, y);
    case BinaryOp::kSub:
      return checked(sub, x, y);
    case BinaryOp::kMul:
      return checked(mul, x, y);
    case BinaryOp::kDiv:
      if (y == 0) eval_fail("division by zero");
      return static_cast<double>(x) / static_cast<double>(y);
    case BinaryOp::kFloorDiv: {
      if (y == 0) eval_fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) overflow();
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return q;
    }
    case BinaryOp::kMod: {
      if (y == 0) eval_fail("integer division or modulo by zero");
      if (y == -1) return int64_t{0};
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return m;
    }
    case BinaryOp::kPow: {
      if (y < 0) return std::pow(static_cast<double>(x), static_cast<double>(y));
      int64_t result = 1;
      int64_t base = x;
      while (y > 0) {
        if (y & 1) result = checked(mul, result, base);
        y >>= 1;
        if (y > 0) base = checked(mul, base, base);
      }
      return result;
    }
  }
  return Value();
}

Value float_op(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::kAdd:
      return x + y;
    case BinaryOp::kSub:
      return x - y;
    case BinaryOp::kMul:
      return x * y;
    case BinaryOp::kDiv:
      if (y == 0) eval_fail("float division by zero");
      return x / y;
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0) eval_fail("float {} by zero", op == BinaryOp::kMod ? "modulo" : "floor division");
      // CPython's float_divmod.
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      if (op == BinaryOp::kMod) return mod;
      if (div == 0) return std::copysign(0.0, x / y);
      double floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
      return floordiv;
    }
    case BinaryOp::kPow:
      return std::pow(x, y);
  }
  return Value();
}

std::vector<Value> repeat(const std::vector<Value>& items, int64_t times) {
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return out;
}

// printf-style `str % args` for the common conversions.
std::string percent_format(const std::string& format, const Value& args) {
  std::vector<Value> items;
  if (args.is_tuple()) {
    items = args.as_list();
  } else {
    items.push_back(args);
  }
  size_t next = 0;
  std::string out;
  size_t i = 0;
  while (i < format.size()) {
    const char c = format[i++];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    std::string spec = "%";
    while (i < format.size() && std::string_view("-+ #0").find(format[i]) != std::string::npos) {
      spec.push_back(format[i++]);
    }
    int64_t number = 0;  // a width or precision being read
    while (i < format.size() &&
           (std::isdigit(static_cast<unsigned char>(format[i])) || format[i] == '.')) {
      number = format[i] == '.' ? 0 : number * 10 + (format[i] - '0');
      // printf pads in a loop and may allocate the precision: both stay small.
      if (number > kMaxFormatWidth)
        eval_fail("format width or precision above {}", kMaxFormatWidth);
      spec.push_back(format[i++]);
    }
    if (i >= format.size()) eval_fail("incomplete format");
    const char conv = format[i++];
    if (conv == '%') {
      out.push_back('%');
      continue;
    }
    if (next >= items.size()) eval_fail("not enough arguments for format string");
    const Value& v = items[next++];
    char buf[512];
    switch (conv) {
      case 's':
      case 'r': {
        const std::string text = conv == 's' ? to_str(v) : repr(v);
        std::snprintf(buf, sizeof(buf), (spec + "s").c_str(), text.c_str());
        append_bounded(out, spec == "%" ? text : std::string(buf));
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o': {
        if (!v.is_number())
          eval_fail("%{} format: a number is required, not {}", conv, type_name(v));
        if (v.is_float() && !(std::fabs(v.as_double()) < 0x1p63)) {
          eval_fail("%{} format: {} does not fit in a 64-bit integer", conv, repr(v));
        }
        const auto n =
            static_cast<long long>(v.is_float() ? std::trunc(v.as_double()) : v.as_int());
        std::snprintf(buf, sizeof(buf), (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(), n);
        out += buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!v.is_number())
          eval_fail("%{} format: a number is required, not {}", conv, type_name(v));
        std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), v.as_double());
        out += buf;
        break;
      }
      default:
        eval_fail("unsupported format character '{}'", conv);
    }
  }
  if (next < items.size()) eval_fail("not all arguments converted during string formatting");
  return out;
}

std::string missing_message(const Value& obj, const Value& key) {
  const std::string what = obj.is_none() ? "'None'" : fmt::format("'{} object'", type_name(obj));
  if (key.is_string()) return fmt::format("{} has no attribute {}", what, repr(key));
  return fmt::format("{} has no element {}", what, repr(key));
}

// Python's PySlice_AdjustIndices for one bound.
int64_t adjust_bound(const Value& bound, int64_t length, int64_t step, bool is_start) {
  if (bound.is_none() || bound.is_undefined()) {
    if (step > 0) return is_start ? 0 : length;
    return is_start ? length - 1 : -1;
  }
  int64_t i = bound.as_int();
  if (i < 0) {
    i += length;
    if (i < 0) i = step < 0 ? -1 : 0;
  } else if (i >= length) {
    i = step < 0 ? length - 1 : length;
  }
  return i;
}

}  // namespace

void require_defined(const Value& v) {
  if (v.is_undefined()) throw EvalError(v.undefined_message());
}

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return int_op(op, a.as_int(), b.as_int());
    return float_op(op, a.as_double(), b.as_double());
  }
  switch (op) {
    case BinaryOp::kAdd:
      if (a.is_string() && b.is_string()) return a.as_string() + b.as_string();
      if (a.is_string()) {
        eval_fail("can only concatenate str (not \"{}\") to str", type_name(b));
      }
      if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
        std::vector<Value> items = a.as_list();
        items.insert(items.end(), b.as_list().begin(), b.as_list().end());
        return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      break;
    case BinaryOp::kMul: {
      const Value* seq = a.is_integral() ? &b : &a;
      const Value* count = a.is_integral() ? &a : &b;
      if (!count->is_integral()) break;
      const int64_t times = count->as_int();
      const size_t unit = seq->is_string() ? seq->as_string().size()
                          : seq->is_list() ? seq->as_list().size()
                                           : 0;
      const size_t limit = seq->is_string() ? kMaxStringBytes : kMaxItems;
      if (times > 0 && unit > 0 && static_cast<uint64_t>(times) > limit / unit) {
        eval_fail("repeating a {} {} times makes a value too large", type_name(*seq), times);
      }
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < times; ++i) out += seq->as_string();
        return out;
      }
      if (seq->is_list()) {
        auto items = repeat(seq->as_list(), times);
        return seq->is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      break;
    }
    case BinaryOp::kMod:
      if (a.is_string()) return percent_format(a.as_string(), b);
      break;
    default:
      break;
  }
  unsupported_operands(op, a, b);
}

Value negate(const Value& v) {
  require_defined(v);
  if (v.is_float()) return -v.as_double();
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) overflow();
    return -v.as_int();
  }
  eval_fail("bad operand type for unary -: '{}'", type_name(v));
}

Value unary_plus(const Value& v) {
  require_defined(v);
  if (v.is_float()) return v;
  if (v.is_integral()) return v.as_int();
  eval_fail("bad operand type for unary +: '{}'", type_name(v));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        eval_fail("'in <string>' requires string as left operand, not {}", type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& v : container.as_list()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      if (item.is_list() && !item.is_tuple()) eval_fail("unhashable type: 'list'");
      if (item.is_dict()) eval_fail("unhashable type: 'dict'");
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default:
      eval_fail("argument of type '{}' is not iterable", type_name(container));
  }
}

Value get_attr(const Value& obj, std::string_view name) {
  require_defined(obj);
  if (auto method = find_method(obj, name)) return *method;
  if (obj.is_dict()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
  } else if (obj.is_object()) {
    if (const Value* v = obj.as_object().attrs.find(name)) return *v;
  }
  return Value::undefined(missing_message(obj, Value(name)));
}

Value get_item(const Value& obj, const Value& key) {
  require_defined(obj);
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
  }
  if ((obj.is_list() || obj.is_string()) && key.is_integral()) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const auto& items = obj.as_list();
      const auto n = static_cast<int64_t>(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[i];
    } else {
      const std::u32string text = py::decode(obj.as_string());
      const auto n = static_cast<int64_t>(text.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return py::encode(text.substr(i, 1));
    }
    return Value::undefined(missing_message(obj, key));
  }
  if (key.is_string()) return get_attr(obj, key.as_string());
  return Value::undefined(missing_message(obj, key));
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  require_defined(obj);
  for (const Value* bound : {&start, &stop, &step}) {
    if (!bound->is_none() && !bound->is_undefined() && !bound->is_integral()) {
      return Value::undefined("slice indices must be integers or None");
    }
  }
  const int64_t stride = (step.is_none() || step.is_undefined()) ? 1 : step.as_int();
  if (stride == 0) eval_fail("slice step cannot be zero");
  auto pick = [&](int64_t n, auto&& take) {
    const int64_t begin = adjust_bound(start, n, stride, true);
    const int64_t end = adjust_bound(stop, n, stride, false);
    for (int64_t i = begin; stride > 0 ? i < end : i > end; i += stride) take(i);
  };
  if (obj.is_string()) {
    const std::u32string text = py::decode(obj.as_string());
    std::u32string out;
    pick(static_cast<int64_t>(text.size()), [&](int64_t i) { out.push_back(text[i]); });
    return py::encode(out);
  }
  if (obj.is_list()) {
    const auto& items = obj.as_list();
    std::vector<Value> out;
    pick(static_cast<int64_t>(items.size()), [&](int64_t i) { out.push_back(items[i]); });
    return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  return Value::undefined(fmt::format("'{} object' cannot be sliced", type_name(obj)));
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kString: {
      std::vector<Value> out;
      for (char32_t c : py::decode(v.as_string()))
        out.emplace_back(py::encode(std::u32string(1, c)));
      return out;
    }
    case Value::Kind::kList:
      return v.as_list();
    case Value::Kind::kDict: {
      std::vector<Value> out;
      for (const auto& [k, _] : v.as_dict().items()) out.emplace_back(k);
      return out;
    }
    default:
      eval_fail("'{}' object is not iterable", type_name(v));
  }
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(py::length(v.as_string()));
    case Value::Kind::kList:
      return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.as_dict().size());
    default:
      eval_fail("object of type '{}' has no len()", type_name(v));
  }
}

}  // namespace fp8llm::jinja
