// What a render makes lives as long as the template can still use it, and no longer. A macro can
// be called after the block that defined it ended, from wherever the template stored it (a
// namespace, a list, a dict, another macro's scope); and when the render returns or fails,
// everything it made is freed, including the reference cycles a template can build: a macro in
// the scope it closes over, a namespace that holds itself, loop.changed() remembering its loop.
// The expected texts were produced by jinja2 3.1 with transformers' settings.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/error.h"
#include "jinja_test_util.h"
#include "text/jinja/template.h"

namespace fp8llm::jinja {
namespace {

using jinja_test::case_name;
using jinja_test::render;
using jinja_test::RenderCase;

class JinjaMacroLifetime : public testing::TestWithParam<RenderCase> {};

TEST_P(JinjaMacroLifetime, RendersAsJinja2Does) {
  const RenderCase& c = GetParam();
  EXPECT_EQ(render(c.source, c.variables), c.expected) << "template: " << c.source;
}

const RenderCase kMacroLifetime[] = {
    {"StoredInNamespaceCalledAfterItsLoop",
     "{% set a = 'A' %}{% set ns = namespace(f=none) %}{% for x in [1, 2] %}{% macro m(y) %}{{ a "
     "}}{{ y }}{% endmacro %}{% set ns.f = m %}{% endfor %}{{ ns.f('b') }}{{ ns.f(y='c') }}",
     "{}", "AbAc"},
    {"CollectedInLoopCalledAfterIt",
     "{% set ns = namespace(fs=[]) %}{% for x in ['p', 'q'] %}{% macro m(y=x) %}{{ y }}{% endmacro "
     "%}{% set ns.fs = ns.fs + [m] %}{% endfor %}{% for f in ns.fs %}{{ f('z') }}{% endfor %}",
     "{}", "zz"},
    {"DefaultEvaluatedAfterItsLoop",
     "{% set ns = namespace(f=none) %}{% for x in [1] %}{% macro m(y=3 * 2) %}{{ y }}{% endmacro "
     "%}{% set ns.f = m %}{% endfor %}{{ ns.f() }}",
     "{}", "6"},
    {"StoredInListAndDict",
     "{% macro m(v) %}<{{ v }}>{% endmacro %}{% set fs = [m, m] %}{{ fs[1]('x') }}{% set d = {'k': "
     "m} %}{{ d.k('y') }}{{ d['k']('z') }}",
     "{}", "<x><y><z>"},
    {"DefinedInMacroCalledAfterItReturned",
     "{% set ns = namespace() %}{% macro outer(p) %}{% macro inner(q) %}{{ p }}{{ q }}{% endmacro "
     "%}{% set ns.f = inner %}{% endmacro %}[{{ outer('v') }}]{{ ns.f('w') }}{{ ns.f('u') }}",
     "{}", "[]vwvu"},
    {"DefinedInSetBlockCalledAfterIt",
     "{% set a = 'A' %}{% set ns = namespace() %}{% set t %}{% macro m(v) %}{{ a }}{{ v }}{% "
     "endmacro %}{% set ns.f = m %}{% endset %}[{{ t }}]{{ ns.f(1) }}",
     "{}", "[]A1"},
    {"PassedToAnotherMacro",
     "{% macro m(v) %}[{{ v }}]{% endmacro %}{% macro apply(f, v) %}{{ f(v) }}{% endmacro %}{{ "
     "apply(m, 3) }}",
     "{}", "[3]"},
    {"RecursionThroughNamespace",
     "{% set ns = namespace() %}{% macro f(n) %}{{ n }}{% if n > 0 %}{{ ns.f(n - 1) }}{% endif "
     "%}{% "
     "endmacro %}{% set ns.f = f %}{{ ns.f(2) }}",
     "{}", "210"},
    {"LoopCalledAfterItEnded",
     "{% set ns = namespace() %}{% for x in [1, 1, 2] %}{% set ns.loop = loop %}{% endfor %}{{ "
     "ns.loop.changed(1) }}{{ ns.loop.changed(1) }}",
     "{}", "TrueFalse"},
    {"NamespaceHoldingItself",
     "{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns.me.me.a }}{% macro mk() %}{% set n = "
     "namespace(v=2) %}{% set n.me = n %}{{ n.me.v }}{% endmacro %}{{ mk() }}{{ mk() }}",
     "{}", "122"},
};

INSTANTIATE_TEST_SUITE_P(Macros, JinjaMacroLifetime, testing::ValuesIn(kMacroLifetime), case_name);

struct ProbedRender {
  std::string text;  // the rendered text, or the message of the error the render raised
  bool probe_alive_after;
};

// Renders `source` with the variable `probe`, a function returning "p", and reports whether
// anything still holds the probe once the render and its variables are gone. The render copies
// its variables into its top scope, so a leaked scope, namespace or loop keeps the probe alive.
ProbedRender render_with_probe(const std::string& source) {
  ProbedRender r;
  std::weak_ptr<int> probe_alive;
  {
    Dict variables;
    {
      auto token = std::make_shared<int>(0);
      probe_alive = token;
      variables.set("probe", Value::function("probe", [token](Args&) { return Value("p"); }));
    }
    try {
      r.text = jinja_test::hf_template(source).render(variables);
    } catch (const Error& e) {
      r.text = e.what();
    }
  }
  r.probe_alive_after = !probe_alive.expired();
  return r;
}

class JinjaRenderFreesItsValues : public testing::TestWithParam<RenderCase> {};

TEST_P(JinjaRenderFreesItsValues, NothingOutlivesTheRender) {
  const RenderCase& c = GetParam();
  const ProbedRender r = render_with_probe(c.source);
  EXPECT_EQ(r.text, c.expected) << "template: " << c.source;
  EXPECT_FALSE(r.probe_alive_after) << "template: " << c.source;
}

// `variables` is unused here: every case renders with `probe` alone.
const RenderCase kCycles[] = {
    {"MacroInTheScopeItClosesOver", "{% macro m() %}{{ probe() }}{% endmacro %}{{ m() }}", "", "p"},
    {"MacroStoredInNamespace",
     "{% set ns = namespace() %}{% for x in [1] %}{% macro m() %}{{ probe() }}{% endmacro %}{% set "
     "ns.f = m %}{% endfor %}{{ ns.f() }}",
     "", "p"},
    {"MacroStoredInList",
     "{% macro m() %}{{ probe() }}{% endmacro %}{% set fs = [m] %}{{ fs[0]() }}", "", "p"},
    {"NamespaceHoldingItself",
     "{% set ns = namespace(p=probe) %}{% set ns.me = ns %}{{ ns.me.p() }}", "", "p"},
    {"NamespacesHoldingEachOther",
     "{% set a = namespace(p=probe) %}{% set b = namespace(a=a) %}{% set a.b = b %}{{ a.b.a.p() }}",
     "", "p"},
    {"NamespaceHoldingItselfInAFinishedLoop",
     "{% for i in [1, 2] %}{% set ns = namespace(p=probe) %}{% set ns.me = ns %}{% endfor %}done",
     "", "done"},
    {"LoopChangedRemembersItsLoop", "{% for x in [1] %}{{ loop.changed(loop, probe) }}{% endfor %}",
     "", "True"},
    {"LoopChangedRemembersANamespaceHoldingTheLoop",
     "{% set ns = namespace() %}{% for x in [1] %}{% set ns.loop = loop %}{% endfor %}{{ "
     "ns.loop.changed(ns, probe) }}",
     "", "True"},
    {"RenderThatFails",
     "{% macro m() %}{{ probe() }}{% endmacro %}{% set ns = namespace(p=probe, f=m) %}{% set ns.me "
     "= ns %}{{ m() }}\n{{ 1 + none }}",
     "", "t line 2: unsupported operand type(s) for +: 'int' and 'NoneType'"},
};

INSTANTIATE_TEST_SUITE_P(Cycles, JinjaRenderFreesItsValues, testing::ValuesIn(kCycles), case_name);

}  // namespace
}  // namespace fp8llm::jinja
