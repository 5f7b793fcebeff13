// JsonView: every error names the file and the value's path, in one format.
#include "core/json_view.h"

#include <gtest/gtest.h>

#include <string>

namespace fp8llm {
namespace {

using nlohmann::json;

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const json kDoc = json::parse(R"({
  "rope_scaling": {"factor": "8", "type": null},
  "layers": [1, "two", {"name": "x"}],
  "big": 18446744073709551615,
  "long": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
})");

TEST(JsonView, PathsOfMembersAndElements) {
  const JsonView root(kDoc, "config.json");
  EXPECT_EQ(root.path(), "");
  EXPECT_EQ(root.where(), "config.json");
  EXPECT_EQ(root["rope_scaling"]["factor"].path(), "rope_scaling.factor");
  EXPECT_EQ(root["layers"][2]["name"].where(), "config.json: layers[2].name");
  EXPECT_EQ(root["layers"][2]["name"].as_string(), "x");
  EXPECT_EQ(root["layers"][0].as_int(), 1);
}

TEST(JsonView, TypeErrorsShowTheValue) {
  const JsonView root(kDoc, "config.json");
  EXPECT_EQ(error_of([&] { root["rope_scaling"]["factor"].as_number(); }),
            "config.json: rope_scaling.factor: expected a number, got \"8\"");
  EXPECT_EQ(error_of([&] { root["layers"][1].as_int(); }),
            "config.json: layers[1]: expected an integer, got \"two\"");
  EXPECT_EQ(error_of([&] { root["layers"].as_object(); }),
            "config.json: layers: expected an object, got [1,\"two\",{\"name\":\"x\"}]");
  EXPECT_EQ(error_of([&] { root["long"].as_bool(); }),
            "config.json: long: expected true or false, got "
            "\"" +
                std::string(56, 'a') + "...");
  EXPECT_EQ(error_of([&] { root["big"].as_int(); }),
            "config.json: big: 18446744073709551615 is out of range");
  EXPECT_EQ(error_of([&] { root.as_array(); }).rfind("config.json: expected an array, got {", 0),
            0u);
}

TEST(JsonView, AbsentAndNullMembers) {
  const JsonView root(kDoc, "config.json");
  const JsonView rope = root["rope_scaling"];
  // operator[] and find treat null as not set; contains and member see it.
  EXPECT_EQ(error_of([&] { rope["type"]; }), "config.json: rope_scaling.type: missing");
  EXPECT_EQ(error_of([&] { rope["theta"]; }), "config.json: rope_scaling.theta: missing");
  EXPECT_FALSE(rope.find("type").has_value());
  EXPECT_TRUE(rope.contains("type"));
  EXPECT_FALSE(rope.has("type"));
  EXPECT_FALSE(rope.contains("theta"));
  EXPECT_TRUE(rope.member("theta").is_null());
  EXPECT_EQ(rope.member("theta").path(), "rope_scaling.theta");
  // member() of a non-object is null too, still named by its path.
  EXPECT_EQ(root["layers"].member("x").where(), "config.json: layers.x");
  EXPECT_EQ(error_of([&] { root["layers"]["x"]; }),
            "config.json: layers: expected an object, got [1,\"two\",{\"name\":\"x\"}]");
  EXPECT_EQ(error_of([&] { root["layers"][3]; }),
            "config.json: layers: has no element 3 (it has 3)");
  EXPECT_EQ(rope.bool_or("absent", true), true);
  EXPECT_EQ(rope.optional_string("type"), std::nullopt);
}

TEST(JsonView, FailNamesFileAndPath) {
  const JsonView root(kDoc, "quantization-config");
  EXPECT_EQ(error_of([&] { root.fail("not a quantization config"); }),
            "quantization-config: not a quantization config");
  EXPECT_EQ(error_of([&] { root.member("_type").fail("{} is not supported", 7); }),
            "quantization-config: _type: 7 is not supported");
  EXPECT_EQ(error_of([&] { root["layers"][2].expected("a number"); }),
            "quantization-config: layers[2]: expected a number, got {\"name\":\"x\"}");
}

}  // namespace
}  // namespace fp8llm
