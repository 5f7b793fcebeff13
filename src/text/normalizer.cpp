#include "text/normalizer.h"

#include "text/unicode_nfc.h"

namespace fp8llm {

Normalizer Normalizer::parse(const JsonView& node) {
  Normalizer n;
  if (!node.is_null()) parse_into(node, n);
  return n;
}

void Normalizer::parse_into(const JsonView& node, Normalizer& n) {
  const std::string type = node["type"].as_string();
  if (type == "NFC") {
    // Applying NFC twice is the same as once.
    n.nfc_ = true;
  } else if (type == "Sequence") {
    const JsonView list = node["normalizers"];
    for (size_t i = 0; i < list.as_array().size(); ++i) parse_into(list[i], n);
  } else {
    node["type"].fail("'{}' is not supported (supported: NFC, Sequence)", type);
  }
}

std::string Normalizer::normalize(std::string_view text) const {
  if (!nfc_ || is_nfc_quick(text)) return std::string(text);
  return to_nfc(text);
}

}  // namespace fp8llm
