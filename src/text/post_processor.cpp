#include "text/post_processor.h"

namespace fp8llm {
namespace {

// The ids of special token `name` from the template's "special_tokens" table.
std::vector<int32_t> special_ids(const JsonView& table, const JsonView& reference,
                                 const std::string& name) {
  const auto entry = table.find(name);
  if (!entry) reference.fail("names '{}', which is not in {}", name, table.path());
  const JsonView ids = (*entry)["ids"];
  std::vector<int32_t> out;
  for (size_t i = 0; i < ids.as_array().size(); ++i) {
    const int64_t id = ids[i].as_int();
    if (id < 0 || id > INT32_MAX) ids[i].fail("must be a non-negative 32-bit id");
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

}  // namespace

PostProcessor PostProcessor::parse(const JsonView& node) {
  PostProcessor p;
  if (!node.is_null()) parse_into(node, p.templates_);
  return p;
}

void PostProcessor::parse_into(const JsonView& node, std::vector<Template>& out) {
  const std::string type = node["type"].as_string();
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const JsonView list = node["processors"];
    for (size_t i = 0; i < list.as_array().size(); ++i) parse_into(list[i], out);
    return;
  }
  if (type != "TemplateProcessing") {
    node["type"].fail("'{}' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)",
                      type);
  }
  const JsonView single = node["single"];
  const auto special = node.find("special_tokens");
  Template t;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.as_array().size(); ++i) {
    const JsonView piece = single[i];
    piece.as_object();
    if (const auto seq = piece.find("Sequence")) {
      if (seen_sequence) piece.fail("is a second Sequence in a single-sequence template");
      seen_sequence = true;
    } else if (const auto tok = piece.find("SpecialToken")) {
      if (!special) node.fail("has a SpecialToken but no special_tokens table");
      const auto ids = special_ids(*special, *tok, (*tok)["id"].as_string());
      auto& side = seen_sequence ? t.after : t.before;
      side.insert(side.end(), ids.begin(), ids.end());
    } else {
      piece.fail("must be {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}");
    }
  }
  if (!seen_sequence) single.fail("has no Sequence piece");
  out.push_back(std::move(t));
}

void PostProcessor::add_special_tokens(std::vector<int32_t>& ids) const {
  for (const Template& t : templates_) {
    ids.insert(ids.begin(), t.before.begin(), t.before.end());
    ids.insert(ids.end(), t.after.begin(), t.after.end());
  }
}

}  // namespace fp8llm
