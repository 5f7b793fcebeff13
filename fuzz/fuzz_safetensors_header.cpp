// Feeds arbitrary bytes to the safetensors header parser. The parser may only ever throw
// fp8llm::Error; anything else (a crash, a sanitizer report, another exception) is a bug. When it
// accepts a header, the promises the loader relies on are checked too.
//
// Each input is tried twice: as a whole file, and as the header text of a file framed with the
// right length prefix and some data bytes, so the fuzzer reaches the JSON checks without first
// having to guess a matching 8-byte length.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/error.h"
#include "formats/safetensors.h"

namespace {

constexpr size_t kFramedDataBytes = 256;

void check(bool ok) {
  if (!ok) std::abort();
}

void parse_and_check(std::span<const std::byte> bytes) {
  using namespace fp8llm;
  SafetensorsHeader header;
  try {
    header = parse_safetensors_header(bytes, bytes.size(), "fuzz.safetensors");
  } catch (const Error&) {
    return;
  }
  check(header.data_start >= 8 && header.data_start <= bytes.size());
  uint64_t prev_offset = 0, max_end = header.data_start;
  for (const auto& t : header.tensors) {
    check(t.offset >= header.data_start && t.offset >= prev_offset);
    check(t.nbytes <= bytes.size() && t.offset <= bytes.size() - t.nbytes);
    // Element counts must be computable downstream without overflow.
    uint64_t numel = 1;
    bool empty = false;
    for (int64_t d : t.shape) {
      check(d >= 0);
      if (d == 0)
        empty = true;
      else if (!empty)
        numel *= static_cast<uint64_t>(d);
    }
    check(t.nbytes == (empty ? 0 : numel * dtype_size(t.dtype)));
    if (t.nbytes != 0) {
      check(t.offset >= max_end);  // no overlap
      max_end = t.offset + t.nbytes;
    }
    prev_offset = t.offset;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto input = std::as_bytes(std::span(data, size));
  parse_and_check(input);

  std::vector<std::byte> framed(8 + size + kFramedDataBytes);
  for (size_t i = 0; i < 8; ++i) framed[i] = static_cast<std::byte>(uint64_t{size} >> (8 * i));
  std::copy(input.begin(), input.end(), framed.begin() + 8);
  parse_and_check(framed);
  return 0;
}
