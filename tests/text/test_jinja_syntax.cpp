// The template language's statements and whitespace control: if/for/set/macro/filter blocks,
// loop variables, scoping, break/continue, raw blocks, comments, trim_blocks and lstrip_blocks.
// Each case renders a template with jinja2 semantics as Hugging Face transformers configures them
// (sandboxed, trim_blocks, lstrip_blocks, break/continue, tojson as json.dumps); the expected
// outputs were produced by jinja2 3.1 under those settings.
#include <gtest/gtest.h>

#include <string>

#include "jinja_test_util.h"
#include "text/jinja/template.h"

namespace fp8llm::jinja {
namespace {

using jinja_test::case_name;
using jinja_test::render;
using jinja_test::RenderCase;

class JinjaSyntax : public testing::TestWithParam<RenderCase> {};

TEST_P(JinjaSyntax, RendersAsJinja2Does) {
  const RenderCase& c = GetParam();
  EXPECT_EQ(render(c.source, c.variables), c.expected) << "template: " << c.source;
}

const RenderCase kWhitespace[] = {
    {"TrimAndLstripBlocks",
     "a\n  {% if true %}\n    x\n  {% endif %}\nb {% if true %}y{% endif %}\n  {{ 1 }}\n  {#- c "
     "#}\n  {# d #}\ne",
     "{}", "a\n    x\nb y  1e"},
    {"PlusDisablesLstripAndTrim", "  {%+ if true %}x{% endif +%}\ny", "{}", "  x\ny"},
    {"MinusStripsAllWhitespace", "a \n {%- if true -%} \n b \n {%- endif -%} \n c", "{}", "abc"},
    {"VariableMinus", "a  \n  {{- 'x' -}}  \n  b", "{}", "axb"},
    {"VariableTagsAreNotLstripped", "  {{ 'v' }}\n  {% set a = 1 %}\n{{ a }}", "{}", "  v\n1"},
    {"LoopLinesAndTrailingNewline",
     "line1\n{% for i in [1,2] %}\n  item{{ i }}\n{% endfor %}\nend\n", "{}",
     "line1\n  item1\n  item2\nend"},
    {"OnlyOneTrailingNewlineDropped", "x\n\n", "{}", "x\n"},
    {"CrLfNormalized", "a\r\nb\r{% if true %}\r\nc{% endif %}", "{}", "a\nb\nc"},
    {"TabsBeforeTagStripped", "{% for i in [1] %}\t {% if i %}x{% endif %}\n{% endfor %}", "{}",
     "\t x"},
    {"TextBeforeTagOnSameLineKept", "x {# comment #}\ny  {% if true %}z{% endif %}", "{}",
     "x y  z"},
    {"CommentMinus", "a\n  {#- c -#}\n  b", "{}", "ab"},
    {"RawBlock", "{% raw %}\n{{ x }}{% if %}{% endraw %}\nz", "{}", "\n{{ x }}{% if %}z"},
    {"RawBlockWithMinus", "a  {%- raw -%}  {{ y }}  {%- endraw -%}  b", "{}", "a{{ y }}b"},
    {"BracesInsideVariableTag", "{{ {'a': {'b': 1}} }}{{ '}}' }}{{ \"{%\" }}", "{}",
     "{'a': {'b': 1}}}}{%"},
    {"UnicodeWhitespaceStrippedByMinus", "a\u3000\u00a0{%- if true %}b{% endif %}", "{}", "ab"},
    {"LstripNotAfterText", "ab  {% if true %}c{% endif %}\n  d", "{}", "ab  c  d"},
    {"BlockAtStartOfTemplate", "   {% if true %}x{% endif %}", "{}", "x"},
    {"LstripAfterVariableOnPreviousLine",
     "{{ 'a' }}\n  {% if true %}x{% endif %}|{{ 'a' -}}\n  {% if true %}y{% endif %}|{{ 'b' }}  {% "
     "if true %}z{% endif %}",
     "{}", "a\nx|ay|b  z"},
    {"CommentOnlyLines", "{# a #}\n{# b #}\nx\n  {# c #}  \ny", "{}", "x\n  \ny"},
    {"NewlineAfterVariableKept", "{{ 'a' }}\nb\n{% if true %}x{% endif %}\n", "{}", "a\nb\nx"},
    {"MinusOnBothSidesOfLoop", "<\n{%- for i in [1, 2] -%}\n  {{ i }}\n{%- endfor -%}\n>", "{}",
     "<12>"},
    {"IndentedTemplateStyle",
     "{%- for m in ms %}\n    {%- if m == 'a' %}\n        {{- 'A' }}\n    {%- else %}\n        {{- "
     "m }}\n    {%- endif %}\n{%- endfor %}\n",
     "{\"ms\": [\"a\", \"b\"]}", "Ab"},
    {"PlainIndentedBlocks",
     "<ul>\n  {% for x in ['a', 'b'] %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>", "{}",
     "<ul>\n    <li>a</li>\n    <li>b</li>\n</ul>"},
    {"RawPreservesTagsAndLstrip", "  {% raw %}{{ a }}\n  {% endraw %}\nb", "{}", "{{ a }}\nb"},
};

const RenderCase kStatements[] = {
    {"IfElifElse",
     "{% for x in [1,2,3,4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else "
     "%}other{% endif %},{% endfor %}",
     "{}", "one,two,three,other,"},
    {"LoopVariables",
     "{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ "
     "loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ "
     "loop.previtem|default('-') }}{{ loop.nextitem|default('-') }}{{ loop.cycle('o','e') }}{{ "
     "loop.depth }} {% endfor %}",
     "{}", "1032TrueFalse3-bo1 2121FalseFalse3ace1 3210FalseTrue3b-o1 "},
    {"LoopChanged",
     "{% for x in [1,1,2,2,1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", "{}",
     "121"},
    {"FilteredLoop",
     "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}|{% for x "
     "in range(10) if x > 6 %}{{ loop.index }}/{{ loop.length }} {% endfor %}",
     "{}", "1,3,5,7,9|1/3 2/3 3/3 "},
    {"ForElse",
     "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] if x > 5 %}x{% else %}none "
     "passed{% endfor %}|{% for x in nothing %}x{% else %}undefined is empty{% endfor %}",
     "{}", "empty|none passed|undefined is empty"},
    {"ForElseAfterBreakInFirstIteration",
     "{% for i in [1,2] %}{% break %}{% else %}E{% endfor %}|{% for i in [1,2] %}{% if loop.last "
     "%}{% break %}{% endif %}{% else %}E{% endfor %}",
     "{}", "E|"},
    {"IterateDict",
     "{% for k in d %}{{ k }}{% endfor %} {% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} "
     "{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %} {% for (k, v) in d|dictsort %}{{ k }}{{ "
     "v }}{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": 2}}", "ba b=1;a=2; b1a2 a2b1"},
    {"IterateString", "{% for c in 'héy' %}[{{ c }}]{% endfor %}", "{}", "[h][é][y]"},
    {"NestedLoopsShadowLoop",
     "{% for i in [1,2] %}{% for j in 'ab' %}{{ loop.index }}{{ j }}{% endfor %}{{ loop.index "
     "}};{% endfor %}",
     "{}", "1a2b1;1a2b2;"},
    {"BreakAndContinue",
     "{% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{% if i > 6 %}{% break "
     "%}{% endif %}{{ i }}{% endfor %}",
     "{}", "135"},
    {"LoopIterationsHaveTheirOwnScope",
     "{% set x = 0 %}{% for i in [1,2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}|{% for i "
     "in [1,2] %}{{ i }}{% endfor %}{{ i is defined }}",
     "{}", "01020|12False"},
    {"IfDoesNotOpenAScope", "{% if true %}{% set y = 3 %}{% endif %}{{ y }}", "{}", "3"},
    {"NamespaceCarriesStateOutOfLoops",
     "{% set ns = namespace(count=0, found=none) %}{% for i in [3,5,8] %}{% set ns.count = "
     "ns.count + i %}{% if i > 4 and ns.found is none %}{% set ns.found = i %}{% endif %}{% endfor "
     "%}{{ ns.count }} {{ ns.found }}",
     "{}", "16 5"},
    {"NamespaceFromDict",
     "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}{{ ns['a'] "
     "}}",
     "{}", "12False1"},
    {"SetTuple",
     "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set (d, e) = 'xy' %}{{ d }}{{ "
     "e }}",
     "{}", "12(1, 2)xy"},
    {"SetBlock",
     "{% set x %}hi {{ 1 + 1 }}{% endset %}[{{ x }}]{% set y | upper | trim %}  ab  {% endset "
     "%}[{{ y }}]",
     "{}", "[hi 2][AB]"},
    {"SetBlockHasItsOwnScope",
     "{% set x %}{% set inner = 1 %}a{% endset %}{{ x }}{{ inner is defined }}", "{}", "aFalse"},
    {"Macro",
     "{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} "
     "{{ greet('B', '?') }} {{ greet(punct='.', name='C') }} [{{ greet() }}]",
     "{}", "Hello A! Hello B? Hello C. [Hello !]"},
    {"MacroSeesTemplateVariablesAtCallTime",
     "{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }}{% for x in [7] "
     "%}{{ m() }}{% endfor %}",
     "{}", "22"},
    {"RecursiveMacro",
     "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", "{}",
     "321"},
    {"FilterBlock",
     "{% filter upper %}abc {{ 'd' }}{% endfilter %}{% filter replace('a', 'o') | trim %}  banana  "
     "{% endfilter %}",
     "{}", "ABC Dbonono"},
    {"Comments", "a{# {{ x }} {% if %} #}b{#\n multi\n line #}c", "{}", "abc"},
    {"SetReadsOuterValueEachIteration",
     "{% set x = 1 %}{% for i in [1,2,3] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", "{}",
     "2341"},
    {"UnpackPairsInLoop",
     "{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %} {% for v in d.values() %}{{ v "
     "}}{% endfor %}",
     "{\"d\": {\"x\": 1, \"y\": 2}}", "1234 12"},
    {"MacroInsideLoopAndDefaults",
     "{% for i in [1, 2] %}{% macro show(v=i * 10) %}{{ v }}{% endmacro %}{{ show() }}{{ show(0) "
     "}}{% endfor %}",
     "{}", "100200"},
    {"LoopVariableAfterEmptyFilter",
     "{% for x in [1, 2, 3] if x > 1 %}{{ loop.index0 }}{{ loop.first }}{% endfor %}", "{}",
     "0True1False"},
    {"ReassignLoopVariable",
     "{% for t in [{'function': {'name': 'f'}}, {'name': 'g'}] %}{% if t.function %}{% set t = "
     "t.function %}{% endif %}{{ t.name }}{% endfor %}",
     "{}", "fg"},
    {"AlternationCheck",
     "{% for m in ms %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}bad{% else %}ok{% "
     "endif %}{% endfor %}",
     "{\"ms\": [{\"role\": \"user\"}, {\"role\": \"assistant\"}, {\"role\": \"assistant\"}]}",
     "okokbad"},
};

// jinja2's own defaults: neither trim_blocks nor lstrip_blocks, each one alone.
TEST(JinjaSyntaxOptions, TrimAndLstripBlocksAreIndependentOptions) {
  const std::string source = "a\n  {% if true %}\n    x\n  {% endif %}\nb\n";
  EXPECT_EQ(Template(source).render(Dict()), "a\n  \n    x\n  \nb");
  EXPECT_EQ(Template(source, TemplateOptions{"t", true, false}).render(Dict()), "a\n      x\n  b");
  EXPECT_EQ(Template(source, TemplateOptions{"t", false, true}).render(Dict()), "a\n\n    x\n\nb");
}

TEST(JinjaSyntaxOptions, ATemplateRendersManyTimes) {
  const Template t("{% set n = n + 1 %}{{ n }}", TemplateOptions{"t", true, true});
  Dict one;
  one.set("n", Value(1));
  Dict two;
  two.set("n", Value(41));
  EXPECT_EQ(t.render(one), "2");
  EXPECT_EQ(t.render(two), "42");
  EXPECT_EQ(t.render(one), "2");
}

// transformers' {% generation %} marks assistant text for its masks; the text renders as is, in a
// scope of its own (the tag is a call block in transformers).
TEST(JinjaSyntaxOptions, GenerationBlockRendersItsBody) {
  EXPECT_EQ(
      render("{% generation %}x{{ 1 + 1 }}{% set g = 1 %}{% endgeneration %}{{ g is defined }}",
             "{}"),
      "x2False");
}

INSTANTIATE_TEST_SUITE_P(Whitespace, JinjaSyntax, testing::ValuesIn(kWhitespace), case_name);
INSTANTIATE_TEST_SUITE_P(Statements, JinjaSyntax, testing::ValuesIn(kStatements), case_name);

}  // namespace
}  // namespace fp8llm::jinja
