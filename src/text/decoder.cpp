#include "text/decoder.h"

#include "text/byte_level.h"

namespace fp8llm {

Decoder Decoder::parse(const JsonView& node) {
  if (node.is_null()) node.fail("null is not supported (supported: ByteLevel)");
  const std::string type = node["type"].as_string();
  if (type != "ByteLevel") node["type"].fail("'{}' is not supported (supported: ByteLevel)", type);
  return Decoder();
}

std::string Decoder::token_bytes(std::string_view token) const {
  auto bytes = byte_level_decode(token);
  return bytes ? std::move(*bytes) : std::string(token);
}

}  // namespace fp8llm
