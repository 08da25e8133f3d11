// Chat templates: the Jinja interpreter on its own (expressions, filters, loops, scoping,
// whitespace control, errors), then every real template under tests/fixtures/chat_templates
// against transformers' renderings in expected.jsonl (make_chat_template_fixtures.py).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model/chat_template/chat_template.h"
#include "model/chat_template/chat_template_option.h"
#include "model/chat_template/python_escapes.h"

namespace lockstep {
namespace {

std::string render(const std::string& src, const nlohmann::ordered_json& ctx = nlohmann::ordered_json::object()) {
  jinja::Dict d;
  for (const auto& [k, v] : ctx.items()) d.set(k, jinja::Value::from_json(v));
  return jinja::Template(src).render(d);
}

TEST(Jinja, ExpressionsFollowPython) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}"), "7|3|-4|1|1024|3.5");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }}|{{ 'ab' * 3 }}|{{ [1, 2] + [3] }}"), "a1None|ababab|[1, 2, 3]");
  EXPECT_EQ(render("{{ true and 'x' }}|{{ false or 'y' }}|{{ not 0 }}|{{ 1 if 0 else 2 }}|{{ 'z' if 1 }}"), "x|y|True|2|z");
  EXPECT_EQ(render("{{ 1 == 1.0 }}|{{ 'b' in 'abc' }}|{{ 3 not in [1, 2] }}|{{ 'k' in {'k': 1} }}"), "True|True|True|True");
  EXPECT_EQ(render("{{ x }}|{{ x is defined }}|{{ none is none }}|{{ 'a' is string }}|{{ {} is mapping }}"), "|False|True|True|True");
  EXPECT_EQ(render("{{ [1, 2, 3][::-1] }}|{{ 'hello'[1:3] }}|{{ [1, 2, 3][-1] }}|{{ 'héllo'[1] }}"), "[3, 2, 1]|el|3|é");
  EXPECT_EQ(render("{{ {'a': 1, 'b': [1.5, 'x']} }}|{{ 0.1 + 0.2 }}|{{ 1e16 * 1.0 }}"), "{'a': 1, 'b': [1.5, 'x']}|0.30000000000000004|1e+16");
}

// Jinja decodes a string literal with Python's unicode_escape (non-ASCII text kept).
TEST(Jinja, StringLiteralEscapesAsJinja) {
  EXPECT_EQ(render(R"({{ 'a\x41\u00e9\101\q|\'|\\|é' }})"), "aAéA\\q|'|\\|é");
  EXPECT_EQ(render(R"({{ "tab\there\nnew" }})"), "tab\there\nnew");
  EXPECT_THROW(render(R"({{ '\x4' }})"), jinja::TemplateError);
}

// Python's whitespace is Unicode's (NBSP, ideographic space, ...), and strip's chars are code
// points: templates trim message contents with it (expected values: Python's).
TEST(Jinja, StripAndSplitFollowPythonsUnicodeWhitespace) {
  EXPECT_EQ(render("{{ s | trim }}|{{ s.strip() }}|{{ s.lstrip() }}|", {{"s", "\u00a0x\u3000"}}), "x|x|x\u3000|");
  EXPECT_EQ(render("{{ s.split() }}", {{"s", "a\u3000b\u00a0c\u2028"}}), "['a', 'b', 'c']");
  EXPECT_EQ(render("{{ s.split(none, 1) }}", {{"s", " a  b  c "}}), "['a', 'b  c ']");
  EXPECT_EQ(render("{{ s.strip('\u00e9a') }}|{{ t.strip() }}", {{"s", "ab\u00e9"}, {"t", "\u001cx\u001f"}}), "b|x");
  EXPECT_EQ(render("{{ s.rstrip() }}", {{"s", "\u00e9\u00a0"}}), "\u00e9");  // a multi-byte character before it stays
}

// Jinja's lexer (keep_trailing_newline off, as in transformers) turns \r\n and \r into \n and
// drops one newline at the end: a chat_template.jinja file ending in a newline renders without
// it (expected values: jinja2 3.1's ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks)).
TEST(Jinja, NewlinesAsJinjasLexer) {
  EXPECT_EQ(render("x\n"), "x");
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("x\r\n"), "x");
  EXPECT_EQ(render("a\r\nb|a\rb"), "a\nb|a\nb");
  EXPECT_EQ(render("{% if true %}\ny{% endif %}\n"), "y");
  EXPECT_EQ(render("{{ \"p\r\nq\" }}"), "p\nq");
}

TEST(Jinja, FiltersAndMethods) {
  EXPECT_EQ(render("{{ '  a b  ' | trim }}|{{ 'x,y,,z'.split(',') }}|{{ ' a  b '.split() }}|{{ 'abc'.upper() }}"),
            "a b|['x', 'y', '', 'z']|['a', 'b']|ABC");
  EXPECT_EQ(render("{{ '\\n\\nx\\n'.strip('\\n') }}|{{ 'aXbX'.replace('X', '-') }}|{{ 'pre_x'.startswith('pre') }}"), "x|a-b-|True");
  EXPECT_EQ(render("{{ [3, 1, 2] | sort | join('-') }}|{{ [1, 2] | length }}|{{ 'héllo' | length }}|{{ [] | first }}"), "1-2-3|2|5|");
  EXPECT_EQ(render("{{ {'b': 1, 'a': [1, 2.0, none, true]} | tojson }}"), R"({"b": 1, "a": [1, 2.0, null, true]})");
  EXPECT_EQ(render("{{ {'a': {'b': 'é\"'} } | tojson(indent=2) }}"), "{\n  \"a\": {\n    \"b\": \"é\\\"\"\n  }\n}");
  EXPECT_EQ(render("{{ x | default('d') }}|{{ '' | default('e', true) }}|{{ [{'n': 1}, {'n': 2}] | map(attribute='n') | list }}"),
            "d|e|[1, 2]");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{{ [{'r': 'u'}, {'r': 's'}] | selectattr('r', 'equalto', 's') | list | length }}"), "1");
}

TEST(Jinja, LoopsScopesAndNamespaces) {
  EXPECT_EQ(render("{% for i in [1, 2, 3] %}{{ loop.index }}{{ loop.first }}{{ loop.last }} {% endfor %}"),
            "1TrueFalse 2FalseFalse 3FalseTrue ");
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");  // no leak
  EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}"), "2");
  EXPECT_EQ(render("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for i in [1, 2, 3, 4] if i is even %}{{ i }}{% endfor %}"), "24");
  EXPECT_EQ(render("{% macro greet(n, p='Hi') %}{{ p }} {{ n }}{% endmacro %}{{ greet('a') }}/{{ greet('b', p='Yo') }}"), "Hi a/Yo b");
  EXPECT_EQ(render("{% set b %}in{{ 1 }}{% endset %}[{{ b }}]"), "[in1]");
}

TEST(Jinja, WhitespaceControlLikeTransformers) {
  // trim_blocks + lstrip_blocks: block lines vanish; `-` strips; variables keep their newline.
  EXPECT_EQ(render("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("{{ 'x' }}\n{# comment #}\ny"), "x\ny");
  EXPECT_EQ(render("  {%+ if true %}k{% endif %}"), "  k");
}

TEST(Jinja, ErrorsAreClear) {
  auto error_of = [](const std::string& src) -> std::string {
    try {
      render(src);
    } catch (const jinja::TemplateError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("{% if x %}unclosed").find("missing {% endif %}"), std::string::npos);
  EXPECT_NE(error_of("line1\n{{ 1 + }}").find("line 2"), std::string::npos);
  EXPECT_NE(error_of("{{ raise_exception('roles must alternate') }}").find("roles must alternate"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 | nosuchfilter }}").find("unknown filter 'nosuchfilter'"), std::string::npos);
  EXPECT_NE(error_of("{{ x.y }}").find("'x' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{% frobnicate %}").find("unsupported tag 'frobnicate'"), std::string::npos);
}

// The interpreter against jinja2 itself (set up as transformers sets it up) on a corpus of
// snippets: expressions and precedence, string methods and filters with Python's Unicode rules,
// tests, loops, macros, whitespace control (tests/fixtures/make_jinja_fixtures.py).
TEST(Jinja, MatchesJinja2OnTheSnippetCorpus) {
  std::ifstream in(std::string(LOCKSTEP_CHAT_TEMPLATES_DIR) + "/../jinja/expected.jsonl");
  ASSERT_TRUE(in) << "missing tests/fixtures/jinja/expected.jsonl: run tests/fixtures/make_jinja_fixtures.py";
  int rows = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto row = nlohmann::ordered_json::parse(line);
    ++rows;
    SCOPED_TRACE(row["template"].get<std::string>());
    if (row.contains("error")) {
      EXPECT_THROW(render(row["template"].get<std::string>(), row["context"]), jinja::TemplateError);
      continue;
    }
    try {
      EXPECT_EQ(render(row["template"].get<std::string>(), row["context"]), row["expected"].get<std::string>());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
    }
  }
  EXPECT_GE(rows, 60);
}

TEST(ChatTemplate, MatchesTransformersOnRealTemplates) {
  const std::string dir = LOCKSTEP_CHAT_TEMPLATES_DIR;
  std::ifstream in(dir + "/expected.jsonl");
  ASSERT_TRUE(in) << "missing expected.jsonl: run tests/fixtures/make_chat_template_fixtures.py on the GPU host";
  std::map<std::string, ChatTemplate> templates;
  int rows = 0, errors = 0, continued = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto row = nlohmann::ordered_json::parse(line);
    const std::string name = row["template"].get<std::string>();
    if (!templates.count(name)) templates.emplace(name, ChatTemplate::from_dir(dir + "/" + name));
    const ChatTemplate& t = templates.at(name);
    ++rows;
    continued += row.value("continue_final_message", false);
    SCOPED_TRACE(name + " / " + row["case"].get<std::string>());
    if (row.contains("error")) {
      ++errors;
      EXPECT_THROW(t.render(row["messages"], row["tools"], row["add_generation_prompt"].get<bool>(), row["extra"],
                            row.value("continue_final_message", false)),
                   ChatTemplateError);
      continue;
    }
    std::string got;
    try {
      got = t.render(row["messages"], row["tools"], row["add_generation_prompt"].get<bool>(), row["extra"],
                     row.value("continue_final_message", false));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
      continue;
    }
    EXPECT_EQ(got, row["expected"].get<std::string>());
  }
  EXPECT_GE(rows, 60);
  EXPECT_GE(templates.size(), 5u);
  EXPECT_GE(errors, 1);  // at least one conversation a template refuses
  EXPECT_GE(continued, 10);  // continue_final_message rows (apply_chat_template's cut)
}

TEST(ChatTemplate, FindsTheTemplateOrSaysWhy) {
  EXPECT_THROW(ChatTemplate::from_dir("/nonexistent"), ChatTemplateError);
  const ChatTemplate t = ChatTemplate::from_dir(std::string(LOCKSTEP_CHAT_TEMPLATES_DIR) + "/deepseek_v3");
  EXPECT_EQ(t.render(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])"), nullptr, true),
            "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>");
}

// As Python's codecs.decode(s, "unicode_escape") on ASCII input (the expected values are its).
TEST(ChatTemplateOption, EscapesDecodeAsPythonsUnicodeEscape) {
  EXPECT_EQ(decode_python_escapes(R"(a\nb)"), "a\nb");
  EXPECT_EQ(decode_python_escapes(R"(\t\\ \'" \x41\u00e9\U0001F600)"), "\t\\ '\" A\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(decode_python_escapes(R"(\101\0\777)"), std::string("A\0\xc7\xbf", 4));
  EXPECT_EQ(decode_python_escapes(R"(\q\{)"), R"(\q\{)");  // not escapes: kept
  EXPECT_EQ(decode_python_escapes("line\\\ncont"), "linecont");
  EXPECT_EQ(decode_python_escapes(R"({{ x }}\r\v\a\b\f)"), "{{ x }}\r\v\a\b\f");
  EXPECT_EQ(decode_python_escapes("｜User｜\\n"), "｜User｜\n");  // UTF-8 kept as written
  EXPECT_THROW(decode_python_escapes(R"(\x4)"), std::runtime_error);
  EXPECT_THROW(decode_python_escapes(R"(\u12)"), std::runtime_error);
  EXPECT_THROW(decode_python_escapes("\\"), std::runtime_error);
}

TEST(ChatTemplateOption, AFileOrTheTemplateItselfAsVllmReadsIt) {
  const std::string dir = ::testing::TempDir() + "chat_template_option";
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/t.jinja";
  std::ofstream(file) << "{% for m in messages %}[{{ m.role }}]\\n{{ m.content }}\n{% endfor %}";
  // A file's text is taken as it is (its backslashes are not escapes).
  EXPECT_EQ(chat_template_from_option(file), "{% for m in messages %}[{{ m.role }}]\\n{{ m.content }}\n{% endfor %}");
  // Text with '{', '}' or a newline that is no file: the template itself, escapes decoded.
  EXPECT_EQ(chat_template_from_option(R"({{ bos_token }}\n{{ messages[0].content }})"),
            "{{ bos_token }}\n{{ messages[0].content }}");
  // Anything else is a path that did not open.
  try {
    chat_template_from_option(dir + "/missing.jinja");
    ADD_FAILURE() << "a missing file should throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("looks like a file path, but it cannot be opened"), std::string::npos) << e.what();
  }
  EXPECT_THROW(chat_template_from_option(dir), std::runtime_error);  // a directory
  EXPECT_THROW(chat_template_from_option(R"({{ x }}\x4)"), std::runtime_error);
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplateOption, OverridesTheDirectorysTemplateButKeepsItsSpecialTokens) {
  const ChatTemplate t = ChatTemplate::from_dir(std::string(LOCKSTEP_CHAT_TEMPLATES_DIR) + "/deepseek_v3",
                                                "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}");
  EXPECT_EQ(t.render(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])"), nullptr, true),
            "<｜begin▁of▁sentence｜><user>hi");
  // With no tokenizer_config.json there (or none at all), the override alone.
  EXPECT_EQ(ChatTemplate::from_dir("/nonexistent", "x{{ messages | length }}")
                .render(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])")),
            "x1");
}

}  // namespace
}  // namespace lockstep
