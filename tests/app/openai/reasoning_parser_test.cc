// The deepseek_r1 reasoning split, whole and streamed: every way of cutting the output into
// pieces must give the same reasoning_content and content as the whole-text split.
#include "app/openai/reasoning_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lockstep {
namespace {

std::pair<std::string, std::string> streamed(const std::vector<std::string>& pieces) {
  ReasoningStream s;
  std::string reasoning, content;
  for (const std::string& p : pieces) {
    const auto d = s.push(p);
    reasoning += d.reasoning;
    content += d.content;
  }
  const auto d = s.finish();
  return {reasoning + d.reasoning, content + d.content};
}

TEST(ReasoningParser, WholeText) {
  auto s = split_reasoning("Let me think.</think>The answer is 4.");
  EXPECT_EQ(s.reasoning, "Let me think.");
  EXPECT_EQ(s.content, "The answer is 4.");
  s = split_reasoning("<think>\nhmm</think>");
  EXPECT_EQ(s.reasoning, "\nhmm");
  EXPECT_FALSE(s.content.has_value());
  s = split_reasoning("still thinking <");
  EXPECT_EQ(s.reasoning, "still thinking <");
  EXPECT_FALSE(s.content.has_value());
}

TEST(ReasoningParser, EveryCutOfTheStreamAgreesWithTheWholeSplit) {
  for (const std::string text : {"Let me think.</think>The answer is 4.", "<think>a<b</thi</think>c</think>d",
                                 "  <think>x</think>", "a < b <thin", "</think>only content", "<thin", "x<"}) {
    const ReasoningSplit whole = split_reasoning(text);
    for (std::size_t i = 0; i <= text.size(); ++i)
      for (std::size_t j = i; j <= text.size(); ++j) {
        const auto [r, c] = streamed({text.substr(0, i), text.substr(i, j - i), text.substr(j)});
        const std::string want_r = whole.reasoning.value_or("");
        // Streaming drops a model-written "<think>" only at the start (after whitespace).
        if (text.find("<think>") != std::string::npos && text.find_first_not_of(' ') != text.find("<think>")) continue;
        EXPECT_EQ(r, want_r) << text << " cut at " << i << "," << j;
        EXPECT_EQ(c, whole.content.value_or("")) << text << " cut at " << i << "," << j;
      }
  }
}

TEST(ReasoningParser, TagPiecesNeverLeak) {
  ReasoningStream s;
  EXPECT_EQ(s.push("abc</th").reasoning, "abc");
  const auto d = s.push("ink>rest");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "rest");
}

}  // namespace
}  // namespace lockstep
