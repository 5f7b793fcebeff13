// LoRA adapters as models of their own, as vLLM serves --lora-modules: `fp8llm serve --lora
// NAME=DIR` lists each adapter in /v1/models with the base model as its parent, and a request
// naming one generates what `fp8llm generate --lora DIR` does; the base model's name runs without.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../engine/lora_fixture.h"
#include "server_process.h"

namespace fp8llm::test {
namespace {

using nlohmann::json;

json offline_tokens(const std::string& extra) {
  const CliResult r = run_cli("generate --model " + data_path("tiny-llama").string() +
                              " --quiet --max-tokens 8 --json --prompt-ids 0,384,950,902" + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out)["tokens"];
}

TEST(ServerLora, AdaptersAreModelsOfTheirOwn) {
  TempDir tmp;
  TinyAdapter{.rank = 8, .spread = 0.2f, .seed = 3}.write(tmp / "a");
  ServerProcess server("--lora sharp=" + (tmp / "a").string());
  auto http = server.client();

  const json models = json::parse(http->Get("/v1/models")->body)["data"];
  ASSERT_EQ(models.size(), 2u) << models;
  EXPECT_EQ(models[0]["id"], "tiny-llama");
  EXPECT_EQ(models[1]["id"], "sharp");
  EXPECT_EQ(models[1]["parent"], "tiny-llama");
  EXPECT_EQ(http->Get("/v1/models/sharp")->status, 200);

  const auto complete = [&](const std::string& model) {
    const auto r = http->Post("/v1/completions",
                              json{{"model", model},
                                   {"prompt", {0, 384, 950, 902}},
                                   {"max_tokens", 8},
                                   {"temperature", 0},
                                   {"return_token_ids", true}}
                                  .dump(),
                              "application/json");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    return json::parse(r->body)["choices"][0]["token_ids"];
  };
  const json with_adapter = complete("sharp");
  const json base = complete("tiny-llama");
  EXPECT_EQ(with_adapter, offline_tokens(" --lora " + (tmp / "a").string()));
  EXPECT_EQ(base, offline_tokens(""));
  EXPECT_NE(with_adapter, base);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.log();
}

}  // namespace
}  // namespace fp8llm::test
