// Hugging Face tokenizers compile tokenizer.json's regexes with Oniguruma (Unicode 16.0); lockstep
// with PCRE2, whose Debian 12 tables are Unicode 14.0. A letter, mark, number, punctuation or
// symbol assigned since 14.0 (Egyptian Hieroglyphs Extended-A, CJK Extensions H and I, Garay,
// ...) is in no \p{..} class to PCRE2, so text holding one split differently (fuzzed parity:
// 3 lines in 2000 had other ids). with_oniguruma_classes rewrites a pattern so PCRE2 matches as
// Oniguruma does: each \p{..} gets the ranges Oniguruma's class holds beyond Unicode 14
// (unicode_class_additions.h, generated from the reference); \d is \p{Nd} with its additions;
// \s and \w are Oniguruma's whole lists (PCRE2 also counts U+180E as \s, and its \w is another
// set); \S, \D, \W their complements (outside a character class).
#pragma once

#include <string>
#include <string_view>

namespace lockstep {

std::string with_oniguruma_classes(std::string_view pattern);

}  // namespace lockstep
