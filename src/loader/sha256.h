// SHA-256 (FIPS 180-4, by OpenSSL) of a byte string, as lowercase hex: identifies a checkpoint's
// config.json in the registry of pre-quantized copies.
#pragma once

#include <string>
#include <string_view>

namespace fp8llm {

std::string sha256_hex(std::string_view data);

}  // namespace fp8llm
