// The text commands: tokenize, run (plain and chat), chat (interactive loop on standard input).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace fp8llm::test {
namespace {

std::string model(const std::string& name) { return data_path(name).string(); }

nlohmann::json reference(const std::string& name) {
  std::ifstream in(data_path(name + "/tokenizer_reference.json"));
  return nlohmann::json::parse(in);
}

TEST(TextCli, TokenizeMatchesReference) {
  const auto ref = reference("tiny-llama")["encode"][0];
  CliResult r = run_cli("tokenize --model " + model("tiny-llama") + " --text '" +
                        ref["text"].get<std::string>() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), ref["ids"]);
  r = run_cli("tokenize --model " + model("tiny-llama") + " --no-special --text '" +
              ref["text"].get<std::string>() + "'");
  EXPECT_EQ(nlohmann::json::parse(r.out), ref["ids_no_special"]);
}

TEST(TextCli, TokenizeChatJsonMatchesReference) {
  size_t checked = 0;
  for (const std::string name : {"tiny-qwen3", "tiny-llama"}) {
    const nlohmann::json ref = reference(name);  // kept alive for the loop
    for (const auto& c : ref["chat"]) {
      TempDir tmp;
      std::ofstream(tmp / "messages.json") << c["messages"].dump();
      std::string flags = c["add_generation_prompt"].get<bool>() ? "" : " --no-generation-prompt";
      for (const auto& [key, value] : c["extra"].items())
        flags += " --template-var '" + key + "=" + value.get<std::string>() + "'";
      const CliResult r = run_cli("tokenize --model " + model(name) + " --chat-json " +
                                  (tmp / "messages.json").string() + flags);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(nlohmann::json::parse(r.out), c["ids"]) << name << " " << c["messages"].dump();
      ++checked;
    }
  }
  EXPECT_EQ(checked, 16u);
}

TEST(TextCli, RunStreamsText) {
  const CliResult r = run_cli("run --model " + model("tiny-qwen3") +
                              " --prompt 'Hello world' --max-tokens 8 -q fp8-block");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.err.find("loaded"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
}

TEST(TextCli, RunIsDeterministicWithSeed) {
  const std::string args = "run --model " + model("tiny-llama") +
                           " --prompt 'Hi' --max-tokens 12 --temperature 0.8 --seed 3 --quiet";
  const CliResult a = run_cli(args), b = run_cli(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.err, "");
}

TEST(TextCli, RunChatAndStopString) {
  const CliResult full = run_cli("run --model " + model("tiny-qwen3") +
                                 " --chat --prompt 'Hi there!' --max-tokens 16 --quiet");
  ASSERT_EQ(full.exit_code, 0) << full.err;
  ASSERT_GT(full.out.size(), 3u);
  // Stopping at a string taken from the middle of that output prints only what came before it.
  const std::string text = full.out.substr(0, full.out.size() - 1);
  size_t cut = text.size() / 2;
  while (cut < text.size() && !std::isalnum(static_cast<unsigned char>(text[cut]))) ++cut;
  ASSERT_LT(cut, text.size()) << "no letter to stop at in: " << text;
  const std::string stop = text.substr(cut, 1);
  const size_t first = text.find(stop);
  const CliResult r = run_cli("run --model " + model("tiny-qwen3") +
                              " --chat --prompt 'Hi there!' --max-tokens 16 --quiet --stop '" +
                              stop + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, text.substr(0, first) + "\n");
}

TEST(TextCli, ChatKeepsHistoryUntilEndOfInput) {
  const CliResult r = run_cli("chat --model " + model("tiny-qwen3") + " --max-tokens 4",
                              "Hello\n\nHow are you?\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Two replies (one per non-empty line), each with its own summary line.
  std::vector<int> prompt_tokens;
  for (size_t p = r.err.find("prompt: "); p != std::string::npos; p = r.err.find("prompt: ", p + 1))
    prompt_tokens.push_back(std::stoi(r.err.substr(p + 8)));
  ASSERT_EQ(prompt_tokens.size(), 2u) << r.err;
  // The second turn's prompt holds the first exchange: it is longer than the first prompt by more
  // than the second question alone.
  EXPECT_GT(prompt_tokens[1], prompt_tokens[0] + 4) << r.err;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// A conversation that outgrows the context loses its oldest exchanges, says so, and goes on (it
// used to end the whole session with an error).
TEST(TextCli, ChatDropsTheOldestTurnsWhenTheContextIsFull) {
  const CliResult r =
      run_cli("chat --model " + model("tiny-llama") +
                  " --max-context 160 --max-tokens 8 --system 'Be "
                  "brief.'",
              "hello there\nhow are you\nwhat is this\nanother one\nand one more\nthe last\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.err, "prompt: "), 6u) << r.err;  // every message got a reply
  EXPECT_GE(count(r.err, "chat: the conversation outgrew the context of 160 tokens; the oldest "),
            1u)
      << r.err;
  // No prompt longer than the context minus the room for the reply.
  for (size_t p = r.err.find("prompt: "); p != std::string::npos; p = r.err.find("prompt: ", p + 1))
    EXPECT_LE(std::stoi(r.err.substr(p + 8)), 160 - 8) << r.err;
}

std::string repeated(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(TextCli, ChatMessageTooLongForTheContextIsNotSent) {
  const CliResult r =
      run_cli("chat --model " + model("tiny-llama") + " --max-context 160 --max-tokens 8 --quiet",
              repeated("a1 ", 200) + "\nshort\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("leaves no room for a reply in the context of 160 (--max-context); it was "
                       "not sent"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(count(r.out, "\n"), 1u) << r.out;  // the short message was answered
}

TEST(TextCli, ChatClearConfirmsAndQuitLeaves) {
  for (const char* leave : {"/quit", "/exit"}) {
    const CliResult r =
        run_cli("chat --model " + model("tiny-qwen3") + " --max-tokens 2 --quiet",
                std::string("hello\n/clear\nagain\n") + leave + "\nnever answered\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "chat: cleared; a new conversation starts\n");
    EXPECT_EQ(count(r.out, "\n"), 2u) << leave << ": " << r.out;
  }
}

TEST(TextCli, MissingTokenizerIsOneLineError) {
  TempDir tmp;
  copy_dir(data_path("tiny-qwen3"), tmp.path());
  std::filesystem::remove(tmp / "tokenizer.json");
  const CliResult r = run_cli("run --model " + tmp.path().string() + " --prompt x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fp8llm::test
