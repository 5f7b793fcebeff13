// The limits of one render (text/jinja/limits.h): a template that loops without end, builds
// values without bound or nests deeply fails with a one-line error in well under a second, while
// the templates models ship render long conversations far inside the limits.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "jinja_test_util.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/jinja/limits.h"

namespace fp8llm::jinja {
namespace {

using jinja_test::error_of;
using jinja_test::RenderCase;

constexpr const char* kWork =
    "t line 1: the template does more than 5000000 units of work (statements, loop iterations "
    "and values built), far beyond what a chat template needs: an endless or huge loop?";
constexpr const char* kString =
    "t line 1: the template builds a string of more than 33554432 bytes (limit 32 MiB)";

const RenderCase kLimits[] = {
    {"NestedLoops",
     "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{}",
     kWork},
    {"LoopOverAHugeStringReadEachTime",
     "{% set s = 'a' * 30000000 %}{% for i in range(100000) %}{% if 'b' in s %}{% endif %}"
     "{% endfor %}",
     "{}", kWork},
    {"MacroCallsInALoop",
     "{% macro f() %}{% for i in range(1000) %}x{% endfor %}{% endmacro %}"
     "{% for i in range(100000) %}{% set y = f() %}{% endfor %}",
     "{}", kWork},
    {"DoublingAStringInALoop",
     "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}",
     "{}", kString},
    {"ManyShortSteps",
     "{% for i in range(100000) %}{% for j in range(100000) %}{% set x = i + j - 1 * 2 %}"
     "{% endfor %}{% endfor %}",
     "{}", kWork},
    {"ConcatenatingHugeStrings", "{% set s = 'x' * 20000000 %}{{ s ~ s }}", "{}", kString},
    {"OutputOfALoop", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "{}", kString},
    {"JoinWithAHugeSeparator", "{{ ([' '] * 4000000)|join('x' * 1000) }}", "{}", kString},
    {"JoinMethod", "{{ ('x' * 1000000).join(['a'] * 100) }}", "{}", kString},
    {"ReplaceEverywhere", "{{ ('x' * 100000).replace('', 'y' * 1000) }}", "{}", kString},
    {"IndentEveryLine", "{{ ('\\n' * 100000)|indent('x' * 1000, true, true) }}", "{}", kString},
    {"FormatMethod", "{{ ('{0}' * 1000).format('x' * 100000) }}", "{}", kString},
    {"PercentFormat", "{{ ('%s' * 1000) % (('x' * 100000,) * 1000) }}", "{}", kString},
    {"ToJsonSeparators", "{{ ([1] * 100000)|tojson(separators=('x' * 1000, ':')) }}", "{}",
     kString},
    {"PrintAHugeList", "{{ ['x' * 1000] * 100000 }}", "{}", kString},
    {"RepeatAList", "{{ ([1, 2] * 3000000)|length }}", "{}",
     "t line 1: repeating a list 3000000 times makes a value too large"},
    {"GrowAList",
     "{% set ns = namespace(l=[1] * 1000000) %}{% for i in range(10) %}"
     "{% set ns.l = ns.l + ns.l %}{% endfor %}",
     "{}", "t line 1: the template builds a list or dict of more than 4194304 items"},
    {"NestLists",
     "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}"
     "{% endfor %}",
     "{}", "t line 1: the template nests lists and dicts more than 256 levels deep"},
    {"NestDicts",
     "{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set ns.d = {'a': ns.d} %}"
     "{% endfor %}",
     "{}", "t line 1: the template nests lists and dicts more than 256 levels deep"},
    {"NamespaceHoldingItself", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "{}",
     "t line 1: cannot print a value nested more than 256 levels deep (a namespace holding "
     "itself?)"},
    {"ListHoldingItsNamespace", "{% set ns = namespace(l=[]) %}{% set ns.l = [ns] %}{{ ns.l }}",
     "{}",
     "t line 1: cannot print a value nested more than 256 levels deep (a namespace holding "
     "itself?)"},
    {"RecursiveMacroWithLoops",
     "{% macro f() %}{% for i in range(100000) %}{{ f() }}{% endfor %}{% endmacro %}{{ f() }}",
     "{}", "t line 1: macro 'f': maximum recursion depth (100) exceeded"},
    {"HugeFormatWidth", "{{ '%999999999d' % 1 }}", "{}",
     "t line 1: format width or precision above 100"},
    {"HugeFormatPrecision", "{{ '%.999999999f' % 1.5 }}", "{}",
     "t line 1: format width or precision above 100"},
    {"FloatTooLargeForAnInteger", "{{ '%d' % 1e300 }}", "{}",
     "t line 1: %d format: 1e+300 does not fit in a 64-bit integer"},
    {"InfinityAsAnInteger", "{{ '%x' % (1e308 * 10) }}", "{}",
     "t line 1: %x format: inf does not fit in a 64-bit integer"},
};

class JinjaLimits : public testing::TestWithParam<RenderCase> {};

TEST_P(JinjaLimits, FailWithTheLimitNamed) {
  const RenderCase& c = GetParam();
  const auto start = std::chrono::steady_clock::now();
  try {
    jinja_test::render(c.source, c.variables);
    FAIL() << "rendered";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), c.expected);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Well under a second in a release build; the bound leaves room for sanitizers and a busy host.
  EXPECT_LT(seconds, 60.0) << "the limit took too long to reach";
}

INSTANTIATE_TEST_SUITE_P(All, JinjaLimits, testing::ValuesIn(kLimits), jinja_test::case_name);

// A long conversation through the templates the fixture models ship: far inside every limit.
TEST(JinjaLimits, RealTemplatesRenderLongConversations) {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "system"}, {"content", "Be brief."}});
  const std::string text(2000, 'w');
  for (int i = 0; i < 2000; ++i) {
    messages.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", text}});
  }
  for (const char* model : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    const ChatTemplate t = ChatTemplate::from_tokenizer_config(test::data_path(model));
    std::string out;
    EXPECT_NO_THROW(out = t.render(messages, true)) << model;
    EXPECT_GT(out.size(), 2000u * text.size()) << model;
  }
}

TEST(JinjaLimits, AMessageOfMegabytesRenders) {
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(test::data_path("tiny-qwen3"));
  const std::string big(8 << 20, 'b');
  const nlohmann::ordered_json messages = {{{"role", "user"}, {"content", big}}};
  EXPECT_NE(t.render(messages, true).find(big), std::string::npos);
}

TEST(JinjaLimits, ChatMessagesNestedTooDeeplyAreAnError) {
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(test::data_path("tiny-llama"));
  nlohmann::ordered_json deep = "x";
  for (int i = 0; i < 1000; ++i) deep = nlohmann::ordered_json::array({deep});
  const nlohmann::ordered_json messages = {{{"role", "user"}, {"content", "hi"}, {"extra", deep}}};
  EXPECT_EQ(test::error_of([&] { t.render(messages, true); }),
            "chat messages: JSON nested more than 256 levels deep");
}

}  // namespace
}  // namespace fp8llm::jinja
