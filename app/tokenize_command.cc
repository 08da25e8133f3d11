// `lockstep tokenize` (see tokenize_command.h).
#include "app/tokenize_command.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "model/tokenizer/tokenizer.h"

namespace lockstep {

CLI::App* add_tokenize_command(CLI::App& app, TokenizeOptions& o) {
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode JSONL strings to token ids (or --decode ids to strings)");
  cmd->add_option("--tokenizer", o.tokenizer_dir, "Directory holding tokenizer.json (a model checkpoint)")->required();
  cmd->add_flag("--add-special-tokens", o.add_special_tokens, "Let the post-processor add BOS/EOS as the model expects");
  cmd->add_flag("--decode", o.decode, "Read arrays of ids, write strings");
  cmd->add_flag("--skip-special-tokens", o.skip_special_tokens, "With --decode: leave special tokens out");
  return cmd;
}

int run_tokenize(const TokenizeOptions& o) {
  std::shared_ptr<const Tokenizer> tok;
  try {
    tok = Tokenizer::from_dir(o.tokenizer_dir);
  } catch (const TokenizerError& e) {
    std::cerr << "lockstep tokenize: error: " << e.what() << "\n";
    return 2;
  }
  std::ios::sync_with_stdio(false);
  int status = 0;
  long line_no = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++line_no;
    try {
      const nlohmann::json in = nlohmann::json::parse(line);
      if (o.decode) {
        if (!in.is_array()) throw std::invalid_argument("expected a JSON array of token ids");
        std::vector<int> ids;
        for (const auto& v : in) {
          if (!v.is_number_integer()) throw std::invalid_argument("expected integer token ids, got " + v.dump());
          ids.push_back(v.get<int>());
        }
        std::cout << nlohmann::json(tok->decode(ids, o.skip_special_tokens)).dump(-1, ' ', false,
                                                                                  nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        if (!in.is_string()) throw std::invalid_argument("expected a JSON string");
        std::cout << nlohmann::json(tok->encode(in.get<std::string>(), o.add_special_tokens)).dump() << "\n";
      }
    } catch (const std::exception& e) {
      std::cerr << "lockstep tokenize: line " << line_no << ": " << e.what() << "\n";
      std::cout << "null\n";
      status = 1;
    }
  }
  std::cout.flush();
  return status;
}

}  // namespace lockstep
