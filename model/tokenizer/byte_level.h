// GPT-2's byte-level alphabet, as Hugging Face tokenizers' ByteLevel pre-tokenizer and
// decoder use it: every byte maps to one printable Unicode character (printable Latin-1
// bytes to themselves, the rest to U+0100 onwards), so BPE works on text of any bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lockstep {

// Each byte of `raw` as its byte-level character, UTF-8 encoded.
std::string bytes_to_byte_level(std::string_view raw);

// The bytes a token's characters stand for. Returns false (leaving `out` untouched) when a
// character is not in the byte-level alphabet; the decoder then uses the token's own UTF-8.
bool byte_level_to_bytes(std::string_view token, std::string& out);

// Appends code point c, UTF-8 encoded.
void append_utf8(std::string& out, char32_t c);

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Length of the longest prefix of `bytes` that ends on a complete UTF-8 character.
std::size_t complete_utf8_prefix(std::string_view bytes);

}  // namespace lockstep
