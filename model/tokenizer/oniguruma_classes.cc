// with_oniguruma_classes (see oniguruma_classes.h).
#include "model/tokenizer/oniguruma_classes.h"

#include "model/tokenizer/unicode_class_additions.h"

namespace lockstep {

namespace {

std::string_view additions_of(std::string_view name) {
  for (const auto& c : unicode_additions::kClasses)
    if (c.name == name) return c.ranges;
  return {};
}

}  // namespace

std::string with_oniguruma_classes(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 256);
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char ch = p[i];
    if (ch == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if ((e == 'p' || e == 'P') && i + 2 < p.size()) {  // \p{Name}, \pL; \P: its complement
        std::size_t end = i + 2;
        std::string_view name;
        if (p[i + 2] == '{') {
          end = p.find('}', i + 3);
          if (end == std::string_view::npos) return std::string(p);  // malformed: PCRE2 reports it
          name = p.substr(i + 3, end - i - 3);
        } else {
          name = p.substr(i + 2, 1);
        }
        const std::string_view whole = p.substr(i, end + 1 - i);
        const std::string_view extra = additions_of(name);
        if (extra.empty() || (e == 'P' && in_class)) {  // nothing to add, or no way to subtract
          out += whole;
        } else {
          const std::string positive = "\\p{" + std::string(name) + "}" + std::string(extra);
          out += in_class ? positive : (e == 'p' ? "[" : "[^") + positive + "]";
        }
        i = end;
        continue;
      }
      // \s \d \w as Oniguruma's sets; their complements \S \D \W outside a class (inside one
      // there is no subtracting: left as PCRE2 has them).
      const char lower = static_cast<char>(e | 0x20);
      if ((lower == 's' || lower == 'd' || lower == 'w') && (e == lower || !in_class)) {
        const std::string set = lower == 's'   ? std::string(unicode_additions::kSpace)
                                : lower == 'w' ? std::string(unicode_additions::kWord)
                                               : "\\p{Nd}" + std::string(additions_of("Nd"));
        out += in_class ? set : (e == lower ? "[" : "[^") + set + "]";
        ++i;
        continue;
      }
      out += ch;  // any other escape, as written
      out += e;
      ++i;
      continue;
    }
    if (!in_class && ch == '[') {
      in_class = true;
      out += ch;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ] is a literal
      continue;
    }
    if (in_class && ch == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:] inside a class
      const std::size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out += p.substr(i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (in_class && ch == ']') in_class = false;
    out += ch;
  }
  return out;
}

}  // namespace lockstep
