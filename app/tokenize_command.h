// `lockstep tokenize`: a checkpoint's tokenizer on the command line. JSONL in, JSONL out:
// each input line a JSON string, each output line its JSON array of ids; with --decode,
// arrays in and strings out. A bad line is reported on stderr with its number, answered
// with `null`, and makes the exit status 1; the other lines are unaffected.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace lockstep {

struct TokenizeOptions {
  std::string tokenizer_dir;
  bool add_special_tokens = false;
  bool decode = false;
  bool skip_special_tokens = false;
};

CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& opts);
int run_tokenize(const TokenizeOptions& opts);

}  // namespace lockstep
