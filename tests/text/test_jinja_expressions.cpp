// The template language's expressions and library: literals, operators with Python semantics,
// attribute/item access and slices, filters, tests (`is ...`), string/dict/list methods, globals.
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
using jinja_test::repeat;

class JinjaExpressions : public testing::TestWithParam<RenderCase> {};

TEST_P(JinjaExpressions, RendersAsJinja2Does) {
  const RenderCase& c = GetParam();
  EXPECT_EQ(render(c.source, c.variables), c.expected) << "template: " << c.source;
}

const RenderCase kExpressions[] = {
    {"Literals",
     "{{ 1 }} {{ 1.5 }} {{ 1e3 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 'a' 'b' }} {{ "
     "\"q\\\"\" }} {{ 'it\\'s' }} {{ true }} {{ True }} {{ false }} {{ none }} {{ None }}",
     "{}", "1 1.5 1000.0 1000 31 15 5 ab q\" it's True True False None None"},
    {"Collections",
     "{{ [1, 'a', none, true, 1.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1, 2) }} {{ (1,) }} {{ () }} "
     "{{ [] }} {{ {} }} {{ [1, 2,] }}",
     "{}", "[1, 'a', None, True, 1.5] {'k': 'v', 'n': [1]} (1, 2) (1,) () [] {} [1, 2]"},
    {"StringEscapes", "{{ 'a\\tb\\x41\\u00e9\\U0001F600\\101\\d\\\\|\\n|' }}", "{}",
     "a\tbAé😀A\\d\\|\n|"},
    {"ReprOfStrings",
     "{{ ['it\\'s', \"a\\\"b\", 'q\\n', 'tab\\t', '\\\\', 'both\\'\"', 'é', '\\x01'] }}", "{}",
     "[\"it's\", 'a\"b', 'q\\n', 'tab\\t', '\\\\', 'both\\'\"', 'é', '\\x01']"},
    {"FloatRepr",
     "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.0 }} {{ 1.0 }} {{ "
     "-0.0 }} {{ 2.5e-4 }} {{ 1/3 }} {{ 10/4 }} {{ 1e300*1e10 }} {{ 1.5e300 }}",
     "{}",
     "0.30000000000000004 1e+16 1000000000000000.0 1e-05 0.0001 123456789.0 1.0 -0.0 0.00025 "
     "0.3333333333333333 2.5 inf 1.5e+300"},
    {"Arithmetic",
     "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 % 2 }} {{ -7.5 // 2 "
     "}} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 / 5 "
     "}} {{ 7 - 10 }} {{ 2.5 * 2 }} {{ 1 + 1.5 }}",
     "{}", "3 -4 1 2 -2 1.5 -4.0 1024 0.5 64 7 9 2.0 -3 5.0 2.5"},
    {"SequenceArithmetic",
     "{{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' + 'b' }} {{ true + 1 }} "
     "{{ 'x' * 0 }}|{{ (1,) + (2,) }}",
     "{}", "ababab ababab [1, 1] [1, 2] ab 2 |(1, 2)"},
    {"UnaryOperators",
     "{{ -3 }} {{ +3 }} {{ - -3 }} {{ -x }} {{ -1.5 }} {{ -x|abs }} {{ -(2 ** 2) }}", "{\"x\": 4}",
     "-3 3 3 -4 -1.5 4 -4"},
    {"Concat", "{{ 1 ~ 'a' ~ none ~ nothing ~ [1] ~ true }}", "{}", "1aNone[1]True"},
    {"FiltersBindTighterThanOperators",
     "{{ [1,2,3]|length - 1 }} {{ 'ab'|upper ~ 'c' }} {{ 'x' ~ 'y'|upper }} {{ '-' + ' a '|trim + "
     "'-' }}",
     "{}", "2 ABc xY -a-"},
    {"Comparisons",
     "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 1 != 2 "
     "}} {{ none == none }} {{ 2 >= 2 }} {{ 1 <= 0 }} {{ 'a' == 'a' }} {{ [1] == [1] }} {{ {'a': "
     "1} == {'a': 1} }} {{ 1 == '1' }} {{ true == 1 }}",
     "{}", "True False True True True True True True False True True True False True"},
    {"Membership",
     "{{ 'a' in 'cat' }} {{ 1 in [1,2] }} {{ 'k' in {'k':1} }} {{ 'z' not in 'cat' }} {{ 3 not in "
     "[1] }} {{ 'x' in nothing }} {{ 1.0 in [1] }}",
     "{}", "True True True True True False True"},
    {"UndefinedComparesEqualOnlyToUndefined",
     "{{ nothing == other }} {{ nothing == none }} {{ nothing != '' }}", "{}", "True False True"},
    {"LogicReturnsOperands",
     "{{ 1 and 'x' }} {{ 0 and 'x' }} {{ 0 or 'y' }} {{ '' or [] }} {{ not 0 }} {{ not 'a' }} {{ "
     "none or 'd' }} {{ true and not false }} {{ not nothing }}",
     "{}", "x 0 y [] True False d True True"},
    {"ConditionalExpression",
     "{{ 'a' if true else 'b' }} {{ 'a' if false else 'b' }} [{{ 'a' if false }}] {{ 1 if 0 else 2 "
     "if 0 else 3 }} {{ ('y' if x) ~ '.' }}",
     "{\"x\": 1}", "a b [] 3 y."},
    {"AttributeAndItemAccess",
     "{{ d.a.b[0] }} {{ d['a']['b'][-1] }} {{ d.a.b.1 }} {{ d.missing is defined }} {{ d.a.b[5] is "
     "defined }} {{ d['items'] }} {{ d.items()|list|length }} {{ d.a['b'][-4] is defined }}",
     "{\"d\": {\"a\": {\"b\": [10, 20, 30]}, \"items\": \"x\"}}", "10 30 20 False False x 2 False"},
    {"MissingValuesAreUndefined",
     "{{ none.x is defined }} [{{ d.nope }}] [{{ l[9] }}] [{{ 'abc'.nope }}] {{ "
     "d.nope|default('dflt') }}",
     "{\"d\": {}, \"l\": [1]}", "False [] [] [] dflt"},
    {"Slices",
     "{{ [1,2,3,4][1:] }} {{ [1,2,3,4][:2] }} {{ [1,2,3,4][::-1] }} {{ [1,2,3,4][::2] }} {{ "
     "[1,2,3,4][-2:] }} {{ 'hello'[1:3] }} {{ 'héllo'[::-1] }} {{ [1,2,3][5:] }} {{ [1,2,3][-10:2] "
     "}} {{ 'abc'[-1] }} {{ [1,2,3,4][3:0:-1] }} {{ (1,2,3)[1:] }} {{ [1,2,3][:] }}",
     "{}",
     "[2, 3, 4] [1, 2] [4, 3, 2, 1] [1, 3] [3, 4] el olléh [] [1, 2] c [4, 3, 2] (2, 3) [1, 2, 3]"},
    {"UnicodeStrings",
     "{{ 'héllo'|length }} {{ 'héllo'[1] }} {{ 'héllo'|upper }} {{ 'ÀÉÎ'|lower }} {{ 'ß😀'|length "
     "}}",
     "{}", "5 é HÉLLO àéî 2"},
    {"UnicodeCaseMapping",
     "{{ 'straße'|upper }} {{ 'ΑΒΓ Ωμέγα'|lower }} {{ 'привет мир'|upper }} {{ 'ǆemal'|capitalize "
     "}} {{ 'ﬁne'|upper }} {{ 'İ'|lower|length }} {{ 'ᾳ'|upper }} {{ 'ÉCOLE'|lower }} {{ 'ß "
     "straße'|title }} {{ 'ǆ'.title() }} {{ 'ⓐ' is lower }} {{ 'ß'.islower() }} {{ 'Ⅳ'.isupper() "
     "}} {{ '٣'.isdigit() }} {{ 'éß'.isalpha() }}",
     "{}",
     "STRASSE αβγ ωμέγα ПРИВЕТ МИР ǅemal FINE 2 ΑΙ école SS Straße ǅ True True True True True"},
    {"PercentFormatting",
     "{{ '%s-%d' % ('a', 3) }} {{ '%05.1f' % 3.14159 }} {{ '%r' % 'x' }} {{ '100%%' % () }} {{ "
     "'%s' % none }} {{ '%x' % 255 }}",
     "{}", "a-3 003.1 'x' 100% None ff"},
    {"NoneAttributeChain", "[{{ d.a.z }}] {{ d.a.z is defined }}", "{\"d\": {\"a\": null}}",
     "[] False"},
    {"FloatModAndFloorDiv",
     "{{ -7 // 2.0 }} {{ 7 % -2.5 }} {{ 5 // 0.5 }} {{ -0.0 // 1 }} {{ 5.5 // 1 }}", "{}",
     "-4.0 -0.5 10.0 -0.0 5.0"},
    {"UnaryMinusBindsBeforePower", "{{ -2 ** 2 }} {{ 2 * -1 }} {{ not x == 1 }} {{ not 1 == 1 }}",
     "{\"x\": 2}", "4 -2 True False"},
    {"FilterInsideConditional", "{{ 'a' if x else 'b' | upper }} {{ ('a' if x else 'b') | upper }}",
     "{\"x\": 0}", "B B"},
    {"TupleOutput", "{{ 1, 'a' }} {{ (1, [2]) }}", "{}", "(1, 'a') (1, [2])"},
    {"LiteralAccess",
     "{{ {'a': 1}.a }} {{ {'a': 1}['a'] }} {{ [1,2][x] }} {{ {'k' ~ x: 'v'} }} {{ {'a': 1,} }}",
     "{\"x\": 1}", "1 1 2 {'k1': 'v'} {'a': 1}"},
    {"UnsafeAttributesAreUndefined", "[{{ ''.__class__ }}] {{ d.__len__ is defined }}",
     "{\"d\": {}}", "[] False"},
    {"NamespaceRepr", "{{ namespace(a=1) }}", "{}", "<Namespace {'a': 1}>"},
    {"MixedNumberComparisons",
     "{{ 1 < 1.5 }} {{ true < 2 }} {{ 2.0 == 2 }} {{ [1, 'a'] == [1, 'a'] }} {{ (1, 2) == [1, 2] "
     "}} {{ 'é' > 'z' }}",
     "{}", "True True True True False True"},
};

const RenderCase kFilters[] = {
    {"Trim",
     "{{ '  a b \n'|trim }}|{{ 'xxaxx'|trim('x') }}|{{ '\u3000a\u00a0'|trim }}|{{ nothing|trim "
     "}}|{{ 5|trim }}",
     "{}", "a b|a|a||5"},
    {"Default",
     "{{ nothing|default('d') }} {{ none|default('d') }} {{ ''|default('d', true) }} {{ 0|d(5) }} "
     "[{{ nothing|default }}] {{ false|default('x', boolean=true) }}",
     "{}", "d None d 0 [] x"},
    {"Length",
     "{{ [1,2]|length }} {{ 'abc'|count }} {{ {'a':1}|length }} {{ nothing|length }} {{ 'é'|length "
     "}}",
     "{}", "2 3 1 0 1"},
    {"Case",
     "{{ 'hello WORLD'|upper }} {{ 'Hello'|lower }} {{ 'hELLO wORLD'|capitalize }} {{ 'hello-world "
     "foo(bar)'|title }} {{ \"they're bill's\"|title }} {{ 1|upper }}",
     "{}", "HELLO WORLD hello Hello world Hello-World Foo(Bar) They're Bill's 1"},
    {"String",
     "{{ 1|string }} {{ none|string }} {{ [1,'a']|string }} {{ (1|string) ~ '2' }} {{ 1.0|string "
     "}} [{{ nothing|string }}]",
     "{}", "1 None [1, 'a'] 12 1.0 []"},
    {"Join",
     "{{ [1,2,3]|join(', ') }} {{ ['a','b']|join }} {{ [{'n':'x'},{'n':'y'}]|join('-', "
     "attribute='n') }} {{ 'abc'|join('.') }} [{{ nothing|join(',') }}]",
     "{}", "1, 2, 3 ab x-y a.b.c []"},
    {"FirstLast",
     "{{ [1,2,3]|first }} {{ [1,2,3]|last }} {{ 'abc'|first }} {{ 'abc'|last }} {{ []|first is "
     "defined }} {{ {'k': 1}|first }}",
     "{}", "1 3 a c False k"},
    {"ListAndItems",
     "{{ 'ab'|list }} {{ {'a':1}|items|list }} {{ nothing|items|list }} {{ {'a':1}|list }} {{ "
     "(1,2)|list }}",
     "{}", "['a', 'b'] [('a', 1)] [] ['a'] [1, 2]"},
    {"Replace",
     "{{ 'aaa'|replace('a','b') }} {{ 'aaa'|replace('a','b',2) }} {{ 'abc'|replace('','-') }} {{ "
     "123|replace('2', 'x') }}",
     "{}", "bbb bba -a-b-c- 1x3"},
    {"IntAndFloat",
     "{{ '42'|int }} {{ '42.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ -3.9|int }} "
     "{{ '0x1A'|int(base=16) }} {{ ' 12 '|int }} {{ '1_000'|int }} {{ '3.5'|float }} {{ 'x'|float "
     "}} {{ 2|float }} {{ true|int }} {{ none|int }} {{ '1e3'|int }}",
     "{}", "42 42 0 7 3 -3 26 12 1000 3.5 0.0 2.0 1 0 1000"},
    {"ToJson",
     "{{ x|tojson }}|{{ x|tojson(indent=2) }}|{{ x|tojson(sort_keys=true) }}|{{ "
     "'é😀'|tojson(ensure_ascii=true) }}|{{ [1,2]|tojson(separators=(',',':')) }}|{{ "
     "'a<b>&\\''|tojson }}|{{ 1.0|tojson }}|{{ none|tojson }}|{{ [[], {}]|tojson(indent=1) }}|{{ "
     "{'a': 1}|tojson(indent='\t') }}",
     "{\"x\": {\"b\": [1, 2.5, null, true, \"é\\n\\\"\\u0001\177\"], \"a\": {}}}",
     "{\"b\": [1, 2.5, null, true, \"é\\n\\\"\\u0001\177\"], \"a\": {}}|{\n  \"b\": [\n    1,\n    "
     "2.5,\n    null,\n    true,\n    \"é\\n\\\"\\u0001\177\"\n  ],\n  \"a\": {}\n}|{\"a\": {}, "
     "\"b\": [1, 2.5, null, true, "
     "\"é\\n\\\"\\u0001\177\"]}|\"\\u00e9\\ud83d\\ude00\"|[1,2]|\"a<b>&'\"|1.0|null|[\n [],\n "
     "{}\n]|{\n\t\"a\": 1\n}"},
    {"SelectAttrRejectAttrMap",
     "{{ ms|selectattr('role','equalto','user')|list|length }} {{ "
     "ms|rejectattr('role','eq','user')|map(attribute='c')|list }} {{ "
     "ms|selectattr('c')|map(attribute='role')|join(',') }} {{ ms|map(attribute='c', "
     "default=0)|list }} {{ ms|selectattr('c','defined')|list|length }} {{ "
     "ms|rejectattr('c')|list|length }} {{ ms|map(attribute='role')|unique|list }} {{ "
     "ms|selectattr('role', 'in', ['system'])|list|length }}",
     "{\"ms\": [{\"role\": \"system\", \"c\": 1}, {\"role\": \"user\", \"c\": 2}, {\"role\": "
     "\"user\"}]}",
     "2 [1] system,user [1, 2, 0] 2 1 ['system', 'user'] 1"},
    {"SelectRejectMapByName",
     "{{ ['a','B']|map('upper')|list }} {{ [1,2,3,4]|select('odd')|list }} {{ "
     "[1,2,3,4]|reject('even')|list }} {{ [0,1,'',none,'x']|select|list }} {{ [1,5,9]|select('gt', "
     "4)|list }} {{ [' a ']|map('trim')|list }} {{ ['a,b']|map('replace', ',', ';')|list }} {{ "
     "[[1,2],[3]]|map('length')|list }} {{ [{'a': {'b': 1}}]|map(attribute='a.b')|list }} {{ "
     "[[5,6]]|map(attribute='1')|list }}",
     "{}", "['A', 'B'] [1, 3] [1, 3] [1, 'x'] [5, 9] ['a'] ['a;b'] [2, 1] [1] [6]"},
    {"SortUniqueMinMaxSumReverse",
     "{{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','c']|sort }} {{ "
     "['b','A','c']|sort(case_sensitive=true) }} {{ "
     "[{'n':2},{'n':1}]|sort(attribute='n')|map(attribute='n')|list }} {{ "
     "['a','A','b']|unique|list }} {{ [3,1,2]|min }} {{ [3,1,2]|max }} {{ ['a', 'B']|max }} {{ "
     "[1,2,3]|sum }} {{ [{'v':1},{'v':2}]|sum(attribute='v') }} {{ [1,2]|reverse|list }} {{ "
     "'abc'|reverse }} {{ []|max is defined }} {{ [0.5, 1]|sum(start=1) }}",
     "{}",
     "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b', 'c'] [1, 2] ['a', 'b'] 1 3 B 6 3 [2, 1] cba "
     "False 2.5"},
    {"AbsAndRound",
     "{{ -3|abs }} {{ (-2.5)|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ "
     "2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 5|round }} {{ -0.5|round }} {{ "
     "1234.5678|round(-2) if false else 1 }}",
     "{}", "3 2.5 2.0 4.0 2.67 3.0 2.0 5 -0.0 1"},
    {"Indent",
     "{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent('> ', blank=true) "
     "}}|{{ ''|indent(first=true) }}|{{ 'x\n'|indent(1) }}",
     "{}", "a\n    b\n\n    c|  a\n  b|a\n> \n> b|    |x\n"},
    {"DictSort",
     "{{ {'b':1,'A':2,'c':0}|dictsort }} {{ {'b':1,'a':2}|dictsort(by='value') }} {{ "
     "{'b':1,'a':2}|dictsort(reverse=true) }} {{ {'b':1,'A':2}|dictsort(true) }}",
     "{}",
     "[('A', 2), ('b', 1), ('c', 0)] [('b', 1), ('a', 2)] [('b', 1), ('a', 2)] [('A', 2), ('b', "
     "1)]"},
    {"BatchWordcountAttr",
     "{{ [1,2,3,4,5]|batch(2)|list }} {{ [1,2,3]|batch(2, 0)|list }} {{ 'hello big_world, "
     "42'|wordcount }} {{ {'a': 1}|attr('a') }} {{ 'abc'|attr('upper') is callable }}",
     "{}", "[[1, 2], [3, 4], [5]] [[1, 2], [3, 0]] 3  True"},
    {"ChainedSelectAttr",
     "{% for m in ms | rejectattr('role', 'equalto', 'tool') | selectattr('tool_calls', "
     "'undefined') %}{{ m.role }}{% endfor %}",
     "{\"ms\": [{\"role\": \"user\"}, {\"role\": \"tool\"}, {\"role\": \"assistant\", "
     "\"tool_calls\": []}, {\"role\": \"assistant\"}]}",
     "userassistant"},
    {"ToJsonOfTuplesAndNested",
     "{{ (1, 2)|tojson }} {{ {'a': [{'b': none}]}|tojson }} {{ 'line\\nbreak\\ttab\\\\'|tojson }} "
     "{{ 1e20|tojson }} {{ -5|tojson }}",
     "{}", "[1, 2] {\"a\": [{\"b\": null}]} \"line\\nbreak\\ttab\\\\\" 1e+20 -5"},
    {"MapToString", "{{ [1, 2, 3] | map('string') | join('') }} {{ x|trim|length }}",
     "{\"x\": \"  ab \"}", "123 2"},
    {"Format",
     "{{ '%s, %s!'|format('Hello', 'World') }} {{ '%d%%'|format(50) }} {{ '%s'|format([1]) }}",
     "{}", "Hello, World! 50% [1]"},
};

const RenderCase kTests[] = {
    {"TypeTests",
     "{{ x is defined }} {{ y is undefined }} {{ none is none }} {{ 1 is number }} {{ 1.5 is float "
     "}} {{ 1 is integer }} {{ true is integer }} {{ true is boolean }} {{ true is number }} {{ "
     "'a' is string }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is "
     "iterable }} {{ 1 is iterable }} {{ [] is sequence }} {{ {} is sequence }} {{ range is "
     "callable }} {{ x is not none }}",
     "{\"x\": 1}",
     "True True True True True True False True True True True False True True False True True True "
     "True"},
    {"UndefinedIsIterableAndSequence",
     "{{ y is mapping }} {{ y is iterable }} {{ y is sequence }} {{ y is string }} {{ y is none }} "
     "{{ y is number }}",
     "{}", "False True True False False False"},
    {"ValueTests",
     "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ 4 is even }} {{ "
     "3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'a' is in 'abc' }} {{ 1 is "
     "eq 1 }} {{ 1 is equalto 1 }} {{ 2 is gt 1 }} {{ 1 is lt 2 }} {{ 'abc' is lower }} {{ 'ABC' "
     "is upper }} {{ 'aBc' is lower }} {{ none is sameas none }} {{ 1 is ne 2 }} {{ 1 is ge 1 }} "
     "{{ 1 is le 0 }} {{ 'a' is escaped }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 2 }}",
     "{}",
     "True False True False True True True False True True True True True True True False True "
     "True True False False True True"},
    {"TestsInConditions",
     "{% if x is string and x.startswith('a') %}yes{% endif %}{% if y is not defined or y is none "
     "%}-none{% endif %}{{ 'a' if x is not mapping else 'b' }}",
     "{\"x\": \"abc\"}", "yes-nonea"},
};

const RenderCase kMethods[] = {
    {"StringMethods",
     "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x','lo')) }} {{ 'a,b,,c'.split(',') }} "
     "{{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'a b "
     "c'.split(maxsplit=1) }} [{{ '  x  '.strip() }}|{{ 'xxyxx'.strip('x') }}|{{ "
     "'\n\nx\n'.lstrip('\n') }}|{{ 'x  '.rstrip() }}] {{ 'aXbX'.replace('X','-') }} {{ "
     "'aXbX'.replace('X','-', 1) }}",
     "{}",
     "True True ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c'] ['a', 'b c'] [x|y|x\n|x] "
     "a-b- a-bX"},
    {"StringCaseAndSearch",
     "{{ 'hello world'.title() }} {{ \"they're\".title() }} {{ 'hello'.upper() }} {{ "
     "'HeLLo'.lower() }} {{ 'hELLO'.capitalize() }} {{ 'hello'.find('l') }} {{ 'héllo'.rfind('l') "
     "}} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ '-'.join(['a','b']) }} {{ "
     "'123'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'a1'.isalnum() }} {{ '  '.isspace() }} {{ "
     "'abc'.islower() }} {{ 'ABC'.isupper() }} {{ ''.isdigit() }}",
     "{}",
     "Hello World They'Re HELLO hello Hello 2 3 -1 2 a-b True True True True True True False"},
    {"StringFormatAndMisc",
     "{{ '{} and {name}'.format(1, name='x') }} {{ '{0}{0}'.format('ab') }} {{ "
     "'{{}}{}'.format(none) }} {{ '{!r}'.format('q') }} {{ 'a\nb\r\nc'.splitlines() }} {{ "
     "'prefix_x'.removeprefix('prefix_') }} {{ 'x.txt'.removesuffix('.txt') }} {{ 'abc'.foo is "
     "defined }} {{ 'a\tb'.split() }}",
     "{}", "1 and x abab {}None 'q' ['a', 'b', 'c'] x x False ['a', 'b']"},
    {"DictMethods",
     "{{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.get('a') }} {{ "
     "d.get('z') }} {{ d.get('z', 'dflt') }} {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %} "
     "{{ d.get('a') is defined }}",
     "{\"d\": {\"a\": 1, \"b\": 2}}",
     "['a', 'b'] [1, 2] [('a', 1), ('b', 2)] 1 None dflt a1b2 True"},
    {"ListMethods", "{{ [1,2,1].count(1) }} {{ ['a','b'].index('b') }}", "{}", "2 1"},
    {"Globals",
     "{{ range(3)|list }} {{ range(1, 4)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} "
     "{{ namespace(a=1).a }} {{ dict({'k': 1}, z=2) }}",
     "{}", "[0, 1, 2] [1, 2, 3] [5, 3, 1] {'a': 1, 'b': 'x'} 1 {'k': 1, 'z': 2}"},
    {"ContentSplitting",
     "{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ "
     "c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
     "{\"c\": \"<think>\\nhmm\\n</think>\\n\\nDone.\"}", "Done.|hmm"},
    {"RangeNearIntegerLimits",
     "{{ range(0, 9223372036854775807, 9223372036854775806)|list }} {{ range(3, 0)|list }}", "{}",
     "[0, 9223372036854775806] []"},
};

// Nesting that jinja2 itself handles renders; the limit is far above what templates use.
TEST(JinjaExpressionsNesting, DeepButAllowedNesting) {
  EXPECT_EQ(render("{{ " + repeat("(", 50) + "1" + repeat(")", 50) + " }}", "{}"), "1");
  EXPECT_EQ(render("{{ " + repeat("1 + ", 150) + "1 }}", "{}"), "151");
  EXPECT_EQ(render("{{ " + repeat("not ", 150) + "1 }}", "{}"), "True");
}

INSTANTIATE_TEST_SUITE_P(Expressions, JinjaExpressions, testing::ValuesIn(kExpressions), case_name);
INSTANTIATE_TEST_SUITE_P(Filters, JinjaExpressions, testing::ValuesIn(kFilters), case_name);
INSTANTIATE_TEST_SUITE_P(Tests, JinjaExpressions, testing::ValuesIn(kTests), case_name);
INSTANTIATE_TEST_SUITE_P(Methods, JinjaExpressions, testing::ValuesIn(kMethods), case_name);

}  // namespace
}  // namespace fp8llm::jinja
