// Every error a template can raise names the template and the line, and says what went wrong:
// malformed or unsupported syntax when the template is parsed, misuse of values when it renders.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "jinja_test_util.h"
#include "text/jinja/template.h"

namespace fp8llm::jinja {
namespace {

using jinja_test::case_name;
using jinja_test::error_of;
using jinja_test::repeat;
// Each row's `expected` is the whole fp8llm::Error message.
using ErrorCase = jinja_test::RenderCase;

class JinjaErrors : public testing::TestWithParam<ErrorCase> {};

TEST_P(JinjaErrors, FailsNamingTheLine) {
  const ErrorCase& c = GetParam();
  EXPECT_EQ(error_of(c.source, c.variables), c.expected) << "template: " << c.source;
}

// Errors found while parsing, before anything renders.
const ErrorCase kSyntax[] = {
    {"UnterminatedString", "a\n{{ 'x }}", "{}", "t line 2: unterminated string literal"},
    {"UnbalancedBracket", "{{ (1, 2] }}", "{}", "t line 1: unexpected ']', expected ')'"},
    {"UnexpectedClosingBrace", "{{ x } }}", "{}", "t line 1: unexpected '}'"},
    {"BlockNeverClosed", "a\n\n{% if x %}\n{% for y in z %}{% endfor %}", "{}",
     "t line 3: 'if' block is never closed (expected 'endif')"},
    {"EndWithoutBlock", "{% endif %}", "{}", "t line 1: unexpected 'endif': no open block to end"},
    {"MismatchedEnd", "{% for x in y %}\n{% endif %}", "{}",
     "t line 2: unexpected 'endif' inside the 'for' block opened on line 1 (expected 'else' or "
     "'endfor')"},
    {"UnsupportedFilter", "\n{{ x|nosuch }}", "{}", "t line 2: unsupported filter 'nosuch'"},
    {"UnsupportedTest", "{{ x is nosuch }}", "{}", "t line 1: unsupported test 'nosuch'"},
    {"UnsupportedStatement", "a\nb\n{% include 'other.jinja' %}", "{}",
     "t line 3: unsupported statement 'include' (supported: if, for, set, macro, filter, raw, "
     "break, continue, generation)"},
    {"BreakOutsideLoop", "{% break %}", "{}", "t line 1: 'break' outside of a for loop"},
    {"ContinueInMacroInsideLoop",
     "{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}", "{}",
     "t line 1: 'continue' outside of a for loop"},
    {"MissingOperand", "{{ 1 + }}", "{}", "t line 1: unexpected end of print statement '}}'"},
    {"EmptyExpression", "{{ }}", "{}",
     "t line 1: expected an expression, got end of print statement '}}'"},
    {"UnclosedComment", "a\n{# unclosed", "{}", "t line 2: missing end of comment tag '#}'"},
    {"UnclosedRaw", "{% raw %}x", "{}", "t line 1: missing end of raw directive '{% endraw %}'"},
    {"UnclosedVariableTag", "\n{{ x", "{}",
     "t line 2: unexpected end of template: '{{' is never closed by '}}'"},
    {"UnclosedBlockTag", "{% if x", "{}",
     "t line 1: unexpected end of template: '{%' is never closed by '%}'"},
    {"UnexpectedCharacter", "{{ a $ b }}", "{}", "t line 1: unexpected character '$'"},
    {"RecursiveLoop", "{% for x in y recursive %}{% endfor %}", "{}",
     "t line 1: recursive for loops are not supported"},
    {"StarArgs", "{{ f(*args) }}", "{}", "t line 1: *args and **kwargs in calls are not supported"},
    {"PositionalAfterKeyword", "{{ f(a=1, 2) }}", "{}",
     "t line 1: positional argument follows keyword argument"},
    {"AssignToConstant", "{% set true = 1 %}", "{}", "t line 1: can't assign to 'true'"},
    {"MacroParameterOrder", "{% macro m(a=1, b) %}{% endmacro %}", "{}",
     "t line 1: parameter 'b' without a default follows one with a default"},
    {"ChainedTests", "{{ x is defined is defined }}", "{}",
     "t line 1: you cannot chain multiple tests with 'is'"},
    {"NamedUnicodeEscape", "{{ '\\N{DASH}' }}", "{}",
     "t line 1: \\N{...} escapes are not supported in string literals"},
    {"BadHexEscape", "{{ '\\xZZ' }}", "{}", "t line 1: invalid \\x escape in string literal"},
    {"IntegerLiteralTooBig", "{{ 99999999999999999999 }}", "{}",
     "t line 1: integer literal 99999999999999999999 does not fit in 64 bits"},
    {"MissingIn", "{% for x of y %}{% endfor %}", "{}",
     "t line 1: expected 'in' in for loop, got 'of'"},
    {"ExtraTokensInTag", "{% if x y %}{% endif %}", "{}",
     "t line 1: expected end of statement block '%}', got 'y'"},
    {"ElseWithExpression", "{% if x %}{% else y %}{% endif %}", "{}",
     "t line 1: expected end of statement block '%}', got 'y'"},
    {"BlockSetOnAttribute", "{% set ns.x %}a{% endset %}", "{}",
     "t line 1: a block 'set' assigns to one plain name"},
    {"MissingStatementName", "{% %}", "{}",
     "t line 1: expected a statement name, got end of statement block '%}'"},
    {"DotWithoutName", "{{ x.'a' }}", "{}",
     "t line 1: expected an attribute name after '.', got string literal"},
    {"EmptySubscript", "{{ x[] }}", "{}", "t line 1: expected an index or slice inside '[]'"},
    {"MultipleSubscripts", "{{ x[1, 2] }}", "{}",
     "t line 1: multiple subscripts inside '[]' are not supported"},
};

// Errors raised while rendering.
const ErrorCase kRuntime[] = {
    {"UndefinedAttribute", "{{ x.y }}", "{}", "t line 1: 'x' is undefined"},
    {"MissingKeyThenAttribute", "\n{{ d.a.b }}", "{\"d\": {}}",
     "t line 2: 'dict object' has no attribute 'a'"},
    {"MissingIndexThenAttribute", "{{ l[3].x }}", "{\"l\": [1]}",
     "t line 1: 'list object' has no element 3"},
    {"AddIntAndString", "{{ 1 + 'a' }}", "{}",
     "t line 1: unsupported operand type(s) for +: 'int' and 'str'"},
    {"AddStringAndInt", "{{ 'a' + 1 }}", "{}",
     "t line 1: can only concatenate str (not \"int\") to str"},
    {"AddUndefined", "{{ 'a' + nothing }}", "{}", "t line 1: 'nothing' is undefined"},
    {"DivisionByZero", "{{ 1 / 0 }}", "{}", "t line 1: division by zero"},
    {"FloorDivisionByZero", "{{ 1 // 0 }}", "{}", "t line 1: integer division or modulo by zero"},
    {"OrderStringAndInt", "{{ 'a' < 1 }}", "{}",
     "t line 1: '<' not supported between instances of 'str' and 'int'"},
    {"OrderUndefined", "{{ nothing < 1 }}", "{}", "t line 1: 'nothing' is undefined"},
    {"CallUndefined", "{{ x() }}", "{}", "t line 1: 'x' is undefined"},
    {"CallUnknownMethod", "{{ 'abc'.casefold() }}", "{}",
     "t line 1: 'str object' has no attribute 'casefold'"},
    {"MutatingListMethod", "{{ [1].append(2) }}", "{}",
     "t line 1: 'list object' has no attribute 'append'"},
    {"CallInt", "{{ 1() }}", "{}", "t line 1: 'int' object is not callable"},
    {"IterateInt", "\n\n{% for x in 1 %}{% endfor %}", "{}",
     "t line 3: 'int' object is not iterable"},
    {"UnpackTooFew", "{% set a, b = [1] %}", "{}",
     "t line 1: not enough values to unpack (expected 2, got 1)"},
    {"UnpackTooMany", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", "{}",
     "t line 1: too many values to unpack (expected 2)"},
    {"AssignAttributeOfNonNamespace", "{% set x = {} %}\n{% set x.y = 2 %}", "{}",
     "t line 2: cannot assign attribute 'y' on 'x': it is not a namespace()"},
    {"MethodArgumentCount", "{{ 'abc'.upper(1) }}", "{}",
     "t line 1: upper() takes at most 0 arguments (1 given)"},
    {"FilterUnknownKeyword", "{{ [1]|join(',', foo=1) }}", "{}",
     "t line 1: join() got an unexpected keyword argument 'foo'"},
    {"FilterMissingArgument", "{{ 'a'|replace('a') }}", "{}",
     "t line 1: replace() missing required argument 'new'"},
    {"MethodWrongType", "{{ 'a'.strip(1) }}", "{}",
     "t line 1: strip(): argument 'chars' must be None or a string, not int"},
    {"EmptySeparator", "{{ 'a'.split('') }}", "{}", "t line 1: empty separator"},
    {"UndefinedToJson", "{{ nothing|tojson }}", "{}",
     "t line 1: Object of type Undefined is not JSON serializable"},
    {"InNonContainer", "{{ 1 in 2 }}", "{}", "t line 1: argument of type 'int' is not iterable"},
    {"InStringNeedsString", "{{ 1 in 'a' }}", "{}",
     "t line 1: 'in <string>' requires string as left operand, not int"},
    {"RangeTooBig", "{{ range(200000)|length }}", "{}",
     "t line 1: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."},
    {"MacroTooManyArguments", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "{}",
     "t line 1: macro 'm' takes not more than 1 argument(s)"},
    {"MacroUnknownKeyword", "{% macro m(a) %}{% endmacro %}{{ m(b=2) }}", "{}",
     "t line 1: macro 'm' takes no keyword argument 'b'"},
    {"MacroRecursionLimit", "{% macro f() %}{{ f() }}{% endmacro %}\n{{ f() }}", "{}",
     "t line 1: macro 'f': maximum recursion depth (100) exceeded"},
    {"IntegerOverflow", "{{ 2 ** 64 }}", "{}",
     "t line 1: integer overflow (integers are limited to 64 bits)"},
    {"ErrorLineInsideMultilineExpression", "a\n{{ 1 +\n  x.y }}", "{}",
     "t line 3: 'x' is undefined"},
    {"ErrorLineInsideMacroBody", "{% macro m() %}\n{{ 1 + none }}{% endmacro %}\n{{ m() }}", "{}",
     "t line 2: unsupported operand type(s) for +: 'int' and 'NoneType'"},
    {"SortMixedTypes", "{{ [1, 'a']|sort }}", "{}",
     "t line 1: '<' not supported between instances of 'str' and 'int'"},
    {"NonStringDictKey", "{{ {1: 'a'} }}", "{}", "t line 1: dict keys must be strings, not int"},
    {"UnknownTestInSelect", "{{ [1]|select('nosuch')|list }}", "{}",
     "t line 1: select: no test named 'nosuch'"},
    {"UnknownFilterInMap", "{{ [1]|map('nosuch')|list }}", "{}",
     "t line 1: map: no filter named 'nosuch'"},
    {"LengthOfInt", "{{ 1|length }}", "{}", "t line 1: object of type 'int' has no len()"},
    {"ItemsOfList", "{{ [1]|items }}", "{}", "t line 1: Can only get item pairs from a mapping."},
    {"FormatSpecUnsupported", "{{ '{:>5}'.format(1) }}", "{}",
     "t line 1: str.format(): format specs (':>5') are not supported"},
    {"PercentFormatMissingArgument", "{{ '%s %s' % ('a',) }}", "{}",
     "t line 1: not enough arguments for format string"},
    {"ConcatThenAddPrecedence", "{{ 'x' ~ 1 + 2 }}", "{}",
     "t line 1: can only concatenate str (not \"int\") to str"},
    {"RepeatTooLarge", "{{ 'ab' * 100000000 }}", "{}",
     "t line 1: repeating a str 100000000 times makes a value too large"},
    {"FormatIndexOutOfRange", "{{ '{3}'.format(1) }}", "{}",
     "t line 1: Replacement index 3 out of range for positional args tuple"},
    {"FormatFilterKeywords", "{{ '%(a)s'|format(a=1) }}", "{}",
     "t line 1: format(): keyword arguments are not supported"},
};

INSTANTIATE_TEST_SUITE_P(Syntax, JinjaErrors, testing::ValuesIn(kSyntax), case_name);
INSTANTIATE_TEST_SUITE_P(Runtime, JinjaErrors, testing::ValuesIn(kRuntime), case_name);

TEST(JinjaErrorsMore, SyntaxErrorsAreFoundBeforeRendering) {
  // The bad filter sits in a branch that never runs: parsing alone rejects it.
  EXPECT_THROW(Template("{% if false %}{{ x|nosuch }}{% endif %}"), Error);
}

TEST(JinjaErrorsMore, TemplateNameIsTheMessagePrefix) {
  EXPECT_EQ(error_of("\n\n{{ 1 + none }}", "{}"),
            "t line 3: unsupported operand type(s) for +: 'int' and 'NoneType'");
  try {
    Template("{{ 1 + none }}", TemplateOptions{"/models/m/tokenizer_config.json: chat template"})
        .render(Dict());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "/models/m/tokenizer_config.json: chat template line 1: unsupported operand "
                 "type(s) for +: 'int' and 'NoneType'");
  }
}

// Nesting is bounded so that a pathological template fails instead of exhausting the stack.
TEST(JinjaErrorsMore, NestingIsBounded) {
  EXPECT_EQ(error_of("{{ " + repeat("1 + ", 300) + "1 }}"),
            "t line 1: expression nested more than 256 levels deep");
  EXPECT_EQ(error_of("{{ x" + repeat("|trim", 300) + " }}"),
            "t line 1: expression nested more than 256 levels deep");
  EXPECT_EQ(error_of("{{ " + repeat("(", 300) + "1" + repeat(")", 300) + " }}"),
            "t line 1: template nested more than 256 levels deep");
  EXPECT_EQ(error_of("{{ " + repeat("not ", 300) + "1 }}"),
            "t line 1: template nested more than 256 levels deep");
  EXPECT_EQ(error_of(repeat("{% if true %}", 300)),
            "t line 1: template nested more than 256 levels deep");
}

}  // namespace
}  // namespace fp8llm::jinja
