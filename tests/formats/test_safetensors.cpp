#include "formats/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace fp8llm {
namespace {

using test::data_path;
using test::error_of;
using test::TempDir;

std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// A safetensors file from a raw header text and `data_size` bytes of data (0, 1, 2, ...).
std::string make_file(const std::string& header, size_t data_size) {
  std::string data(data_size, '\0');
  for (size_t i = 0; i < data_size; ++i) data[i] = static_cast<char>(i * 7 + 1);
  return le64(header.size()) + header + data;
}

// Writes `bytes` as bad.safetensors in a fresh directory, opens it and returns the error message
// (empty if it opened).
std::string open_error(const std::string& bytes) {
  TempDir dir;
  write_bytes(dir / "bad.safetensors", bytes);
  try {
    SafetensorsFile::open(dir / "bad.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The message names the file, and contains every fragment.
void expect_open_error(const std::string& bytes, std::initializer_list<std::string> fragments) {
  const std::string msg = open_error(bytes);
  ASSERT_FALSE(msg.empty()) << "opened without error";
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  for (const auto& f : fragments)
    EXPECT_NE(msg.find(f), std::string::npos) << "no '" << f << "' in: " << msg;
}

// --- Reading the fixtures ---------------------------------------------------------------------

TEST(Safetensors, ReadsFixtureZeroCopy) {
  const auto path = data_path("tiny-llama/model.safetensors");
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->path(), path);
  EXPECT_EQ(file->file_size(), std::filesystem::file_size(path));
  EXPECT_EQ(file->metadata().at("format"), "pt");
  ASSERT_EQ(file->tensors().size(), 21u);

  const TensorInfo* lm_head = file->find("lm_head.weight");
  ASSERT_NE(lm_head, nullptr);
  EXPECT_EQ(lm_head->dtype, DType::BF16);
  EXPECT_EQ(lm_head->shape, (Shape{1024, 256}));
  EXPECT_EQ(lm_head->nbytes, 1024u * 256 * 2);
  EXPECT_EQ(lm_head->offset, 8u + 2232);  // first tensor: right after the 2232-byte header
  EXPECT_EQ(file->find("no.such.tensor"), nullptr);

  // Sorted by offset, back to back, ending at the end of the file.
  uint64_t expected_offset = 8 + 2232;
  for (const auto& t : file->tensors()) {
    EXPECT_EQ(t.offset, expected_offset) << t.name;
    expected_offset += t.nbytes;
  }
  EXPECT_EQ(expected_offset, file->file_size());

  // Views point into one mapping (zero copy) and hold the bytes at the recorded offsets.
  const TensorView first = file->view(file->tensors().front());
  for (const auto& t : file->tensors()) {
    const TensorView v = file->view(t.name);
    EXPECT_EQ(v.data - first.data, static_cast<ptrdiff_t>(t.offset - file->tensors()[0].offset));
    EXPECT_EQ(v.nbytes, t.nbytes);
    EXPECT_EQ(v.shape, t.shape);
    std::vector<std::byte> buf(t.nbytes);
    ASSERT_EQ(::pread(file->fd(), buf.data(), buf.size(), static_cast<off_t>(t.offset)),
              static_cast<ssize_t>(buf.size()));
    EXPECT_EQ(std::memcmp(buf.data(), v.data, buf.size()), 0) << t.name;
  }
}

TEST(Safetensors, ViewOfMissingTensorNamesFileAndTensor) {
  const auto file = SafetensorsFile::open(data_path("tiny-llama/model.safetensors"));
  try {
    file->view("model.nope");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'model.nope'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, MissingFileIsAnError) {
  TempDir dir;
  try {
    SafetensorsFile::open(dir / "absent.safetensors");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, SortsByOffsetAndAcceptsEmptyTensorsAndScalars) {
  const std::string header = R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                             R"("a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                             R"("e":{"dtype":"BF16","shape":[0,7],"data_offsets":[12,12]},)"
                             R"("z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
  TempDir dir;
  write_bytes(dir / "ok.safetensors", make_file(header, 12));
  const auto file = SafetensorsFile::open(dir / "ok.safetensors");
  std::vector<std::string> names;
  for (const auto& t : file->tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"z", "a", "b", "e"}));
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_EQ(file->view("a").shape, Shape{});
  EXPECT_EQ(file->view("a").nbytes, 4u);
  EXPECT_EQ(file->view("e").nbytes, 0u);
  EXPECT_EQ(file->view("e").shape, (Shape{0, 7}));
  EXPECT_EQ(static_cast<char>(file->view("b").data[0]), static_cast<char>(4 * 7 + 1));
}

TEST(Safetensors, EveryDTypeNameIsKnown) {
  for (const char* name : {"BOOL", "U8", "I8", "I16", "I32", "I64", "F16", "BF16", "F32", "F64",
                           "F8_E4M3", "F8_E5M2"}) {
    const DType t = *dtype_from_name(name);
    const size_t n = 3 * dtype_size(t);
    const std::string header = fmt::format(
        R"({{"__metadata__":{{"k":"v"}},"t":{{"dtype":"{}","shape":[3],"data_offsets":[0,{}]}}}})",
        name, n);
    const std::string bytes = make_file(header, n);
    const auto h = parse_safetensors_header(std::as_bytes(std::span(bytes)), bytes.size(), "x");
    ASSERT_EQ(h.tensors.size(), 1u);
    EXPECT_EQ(h.tensors[0].dtype, t);
    EXPECT_EQ(h.metadata.at("k"), "v");
    EXPECT_EQ(h.data_start, 8 + header.size());
  }
}

// --- Truncated and oversized files -------------------------------------------------------------

TEST(SafetensorsErrors, EmptyFile) {
  expect_open_error("", {"0 bytes", "too short"});
}

TEST(SafetensorsErrors, ShorterThanLengthPrefix) {
  expect_open_error(std::string("\x10\0\0", 3), {"3 bytes", "too short"});
}

TEST(SafetensorsErrors, HugeHeaderLength) {
  expect_open_error(le64(uint64_t{1} << 40) + "{}", {"header length 1099511627776", "limit"});
  expect_open_error(le64(~uint64_t{0}) + "{}", {"header length 18446744073709551615", "limit"});
}

TEST(SafetensorsErrors, HeaderLengthPastEndOfFile) {
  expect_open_error(le64(1000) + "{}", {"header length 1000", "past the end", "truncated"});
}

TEST(SafetensorsErrors, CutInHeader) {
  const std::string good = read_bytes(data_path("tiny-llama/model.safetensors"));
  expect_open_error(good.substr(0, 8 + 1000), {"header length 2232", "truncated"});
}

TEST(SafetensorsErrors, CutInData) {
  const std::string good = read_bytes(data_path("tiny-llama/model.safetensors"));
  // The last tensor in the file loses its last byte.
  expect_open_error(good.substr(0, good.size() - 1),
                    {"tensor 'model.norm.weight'", "past the end of the file"});
}

TEST(SafetensorsErrors, ShortBufferGivenToParser) {
  const std::string bytes =
      make_file(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1);
  try {
    parse_safetensors_header(std::as_bytes(std::span(bytes)).first(20), bytes.size(), "buf.st");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("buf.st"), std::string::npos) << e.what();
  }
}

// --- Header JSON ------------------------------------------------------------------------------

TEST(SafetensorsErrors, HeaderNotJson) {
  expect_open_error(make_file("{not json}   ", 0), {"not valid JSON", "parse error"});
}

TEST(SafetensorsErrors, HeaderNotUtf8) {
  expect_open_error(make_file("{\"\xff\":{}}", 0), {"not valid JSON"});
}

TEST(SafetensorsErrors, HeaderNotAnObject) {
  expect_open_error(make_file("[1, 2]  ", 0), {"header is a JSON array", "expected an object"});
  expect_open_error(make_file("\"text\"", 0), {"header is a JSON string"});
}

TEST(SafetensorsErrors, HeaderNestedTooDeep) {
  expect_open_error(make_file(R"({"t":{"shape":[[1]]}})", 0), {"nested deeper"});
}

TEST(SafetensorsErrors, DuplicateTensorName) {
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                              R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                              2),
                    {"tensor 'w' appears twice"});
}

TEST(SafetensorsErrors, EntryNotAnObject) {
  expect_open_error(make_file(R"({"w":[1,2]})", 0), {"tensor 'w'", "entry is array"});
}

TEST(SafetensorsErrors, MissingFields) {
  expect_open_error(make_file(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", 1),
                    {"tensor 'w'", "missing 'dtype'"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", 1),
                    {"tensor 'w'", "missing 'shape'"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[1]}})", 1),
                    {"tensor 'w'", "missing 'data_offsets'"});
}

TEST(SafetensorsErrors, UnknownDType) {
  expect_open_error(make_file(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", 1),
                    {"tensor 'w'", "unknown dtype 'F4'"});
  expect_open_error(make_file(R"({"w":{"dtype":"bf16","shape":[2],"data_offsets":[0,4]}})", 4),
                    {"tensor 'w'", "unknown dtype 'bf16'"});
  expect_open_error(make_file(R"({"w":{"dtype":7,"shape":[2],"data_offsets":[0,4]}})", 4),
                    {"tensor 'w'", "dtype is 7, expected a string"});
}

TEST(SafetensorsErrors, ShapeDoesNotMatchByteRange) {
  const std::string msg = open_error(make_file(
      R"({"model.norm.weight":{"dtype":"BF16","shape":[256],"data_offsets":[0,100]}})", 100));
  EXPECT_NE(msg.find("bad.safetensors: tensor 'model.norm.weight': data_offsets [0, 100] hold 100 "
                     "bytes but shape [256] of BF16 needs 512"),
            std::string::npos)
      << msg;
}

TEST(SafetensorsErrors, ShapeEntriesMustBeNonNegativeIntegers) {
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2,-1],"data_offsets":[0,0]}})", 0),
                    {"tensor 'w'", "shape [2,-1] has entry 1 = -1"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}})", 2),
                    {"tensor 'w'", "entry 0 = 2.0"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}})", 2),
                    {"tensor 'w'", "entry 0 = \"2\""});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":2,"data_offsets":[0,2]}})", 2),
                    {"tensor 'w'", "shape is 2, expected a list"});
  // Larger than int64.
  expect_open_error(
      make_file(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,2]}})", 2),
      {"tensor 'w'", "entry 0 = 9223372036854775808"});
}

TEST(SafetensorsErrors, HugeDimsDoNotOverflow) {
  // 2^60 * 4 = 2^62 elements of BF16: 2^63 bytes, which fits in 64 bits but not in the file.
  expect_open_error(make_file(R"({"w":{"dtype":"BF16","shape":[1152921504606846976,4],)"
                              R"("data_offsets":[0,8]}})",
                              8),
                    {"tensor 'w'", "hold 8 bytes", "needs 9223372036854775808"});
  // The same count of F64 is 2^65 bytes.
  expect_open_error(make_file(R"({"w":{"dtype":"F64","shape":[1152921504606846976,4],)"
                              R"("data_offsets":[0,8]}})",
                              8),
                    {"tensor 'w'", "needs more than 2^64"});
  // 2^32 * 2^32 elements wraps to 0 in 64-bit arithmetic; it must not match an empty range.
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],)"
                              R"("data_offsets":[0,0]}})",
                              0),
                    {"tensor 'w'", "more than 2^63 elements"});
  // Even with a zero dim the element count must fit in int64.
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,0],)"
                              R"("data_offsets":[0,0]}})",
                              0),
                    {"tensor 'w'", "more than 2^63 elements"});
}

TEST(SafetensorsErrors, BadDataOffsets) {
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}})", 2),
                    {"tensor 'w'", "[2, 0] end before they begin"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0]}})", 2),
                    {"tensor 'w'", "data_offsets is [0], expected [begin, end]"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[-2,0]}})", 2),
                    {"tensor 'w'", "data_offsets is [-2,0]"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":"0,2"}})", 2),
                    {"tensor 'w'", "expected [begin, end]"});
}

TEST(SafetensorsErrors, OffsetsPastEndOfFile) {
  expect_open_error(make_file(R"({"ok":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                              R"("w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                              6),
                    {"tensor 'w'", "[4, 8] go past the end of the file", "holds 6 bytes"});
  // Far past: must not wrap around.
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[2],)"
                              R"("data_offsets":[18446744073709551614,18446744073709551616]}})",
                              2),
                    {"tensor 'w'", "data_offsets is"});
  expect_open_error(make_file(R"({"w":{"dtype":"U8","shape":[1],)"
                              R"("data_offsets":[18446744073709551614,18446744073709551615]}})",
                              2),
                    {"tensor 'w'", "past the end of the file"});
}

TEST(SafetensorsErrors, OverlappingRanges) {
  expect_open_error(make_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                              12),
                    {"tensor 'b'", "[4, 12] overlap tensor 'a' at [0, 8]"});
  // A range inside a larger one that is not the one just before it.
  expect_open_error(make_file(R"({"big":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                              R"("x":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                              R"("y":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}})",
                              16),
                    {"overlap tensor 'big'"});
  // Identical ranges.
  expect_open_error(make_file(R"({"p":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                              R"("q":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                              4),
                    {"tensor 'q'", "overlap tensor 'p'"});
}

TEST(SafetensorsErrors, BadMetadata) {
  expect_open_error(make_file(R"({"__metadata__":[1]})", 0), {"__metadata__ is [1]"});
  expect_open_error(make_file(R"({"__metadata__":{"format":"pt","n":3}})", 0),
                    {"__metadata__ 'n' is 3, expected a string"});
}

// --- Writing ---------------------------------------------------------------------------------

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i * 31 + seed);
  return v;
}

std::vector<std::string> dir_entries(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(SafetensorsWriter, RoundTrip) {
  TempDir dir;
  const auto path = dir / "out.safetensors";
  const auto a = pattern(3 * 5 * 2, 1), b = pattern(2 * 4, 2), s = pattern(8, 3);
  {
    SafetensorsWriter w(path, {{"format", "pt"}, {"note", "round trip"}});
    w.declare("a.weight", DType::BF16, {3, 5});
    w.declare("empty", DType::F8_E4M3, {0, 16});
    w.declare("b", DType::F32, {2});
    w.declare("scalar", DType::I64, {});
    w.write(a);
    // In pieces.
    w.write(std::span(b).first(3));
    w.write(std::span(b).subspan(3));
    w.write(s);
    // Only the temporary file exists until finish().
    EXPECT_FALSE(std::filesystem::exists(path));
    const auto before = dir_entries(dir.path());
    ASSERT_EQ(before.size(), 1u);
    EXPECT_EQ(before[0].rfind(".out.safetensors.tmp-", 0), 0u) << before[0];
    w.finish();
  }
  EXPECT_EQ(dir_entries(dir.path()), std::vector<std::string>{"out.safetensors"});

  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}}));
  // Header padded to a multiple of 8: the data starts aligned.
  EXPECT_EQ(file->tensors().front().offset % 8, 0u);
  std::vector<std::string> names;
  for (const auto& t : file->tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a.weight", "empty", "b", "scalar"}));
  const auto expect_equal = [&](const char* name, DType t, const Shape& shape,
                                const std::vector<std::byte>& bytes) {
    const TensorView v = file->view(name);
    EXPECT_EQ(v.dtype, t) << name;
    EXPECT_EQ(v.shape, shape) << name;
    ASSERT_EQ(v.nbytes, bytes.size()) << name;
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), v.data)) << name;
  };
  expect_equal("a.weight", DType::BF16, {3, 5}, a);
  expect_equal("empty", DType::F8_E4M3, {0, 16}, {});
  expect_equal("b", DType::F32, {2}, b);
  expect_equal("scalar", DType::I64, {}, s);
  EXPECT_EQ(file->file_size(), file->tensors().front().offset + a.size() + b.size() + s.size());
}

TEST(SafetensorsWriter, ReproducesReferenceFileByteForByte) {
  // The fixture was written by the reference implementation; writing its tensors in file order
  // with the same metadata gives the same bytes (compact JSON, space padding, no gaps).
  for (const char* fixture :
       {"tiny-llama/model.safetensors", "tiny-qwen2/model-00002-of-00006.safetensors"}) {
    const auto src = SafetensorsFile::open(data_path(fixture));
    std::vector<std::pair<std::string, TensorView>> tensors;
    for (const auto& t : src->tensors()) tensors.emplace_back(t.name, src->view(t));
    TempDir dir;
    write_safetensors(dir / "copy.safetensors", tensors, src->metadata());
    EXPECT_TRUE(read_bytes(dir / "copy.safetensors") == read_bytes(data_path(fixture))) << fixture;
  }
}

TEST(SafetensorsWriter, NoMetadataWritesNoMetadataEntry) {
  TempDir dir;
  const auto v = pattern(4, 0);
  write_safetensors(dir / "m.safetensors", {{"t", TensorView{DType::U8, {4}, v.data(), 4}}}, {});
  const std::string bytes = read_bytes(dir / "m.safetensors");
  EXPECT_EQ(bytes.find("__metadata__"), std::string::npos);
  EXPECT_EQ((bytes.size() - 4) % 8, 0u);
  EXPECT_TRUE(SafetensorsFile::open(dir / "m.safetensors")->metadata().empty());
}

TEST(SafetensorsWriter, EmptyFileRoundTrips) {
  TempDir dir;
  SafetensorsWriter w(dir / "e.safetensors");
  w.finish();
  const auto file = SafetensorsFile::open(dir / "e.safetensors");
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_EQ(file->metadata().at("format"), "pt");
}

TEST(SafetensorsWriter, TooManyBytesIsAnErrorAndLeavesNoFile) {
  TempDir dir;
  const auto path = dir / "w.safetensors";
  {
    SafetensorsWriter w(path);
    w.declare("t", DType::BF16, {4});
    w.declare("u", DType::U8, {1});
    w.write(pattern(6, 0));
    const std::string msg = error_of([&] { w.write(pattern(4, 0)); });
    EXPECT_NE(msg.find("w.safetensors: tensor 't': 10 bytes written but shape [4] of BF16 holds 8"),
              std::string::npos)
        << msg;
    // The writer refuses to go on: the file would be corrupt.
    EXPECT_NE(error_of([&] { w.finish(); }).find("earlier write failed"), std::string::npos);
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());
}

TEST(SafetensorsWriter, TooFewBytesIsAnErrorAtFinish) {
  TempDir dir;
  const auto path = dir / "w.safetensors";
  {
    SafetensorsWriter w(path);
    w.declare("t", DType::F32, {2, 2});
    w.declare("u", DType::U8, {1});
    w.write(pattern(12, 0));
    const std::string msg = error_of([&] { w.finish(); });
    EXPECT_NE(
        msg.find("w.safetensors: tensor 't': 12 bytes written but shape [2, 2] of F32 needs 16"),
        std::string::npos)
        << msg;
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());
  {
    // A tensor never written at all.
    SafetensorsWriter w(path);
    w.declare("t", DType::U8, {2});
    w.declare("u", DType::U8, {1});
    w.write(pattern(2, 0));
    const std::string msg = error_of([&] { w.finish(); });
    EXPECT_NE(msg.find("tensor 'u': 0 bytes written"), std::string::npos) << msg;
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());
}

TEST(SafetensorsWriter, BytesAfterTheLastTensor) {
  TempDir dir;
  SafetensorsWriter w(dir / "w.safetensors");
  w.declare("t", DType::U8, {2});
  w.write(pattern(2, 0));
  const std::string msg = error_of([&] { w.write(pattern(1, 0)); });
  EXPECT_NE(msg.find("w.safetensors: 1 bytes written after the last declared tensor"),
            std::string::npos)
      << msg;
}

TEST(SafetensorsWriter, DestroyedWithoutFinishRemovesTemporaryFile) {
  TempDir dir;
  {
    SafetensorsWriter w(dir / "w.safetensors");
    w.declare("t", DType::U8, {2});
    w.write(pattern(2, 0));
    EXPECT_EQ(dir_entries(dir.path()).size(), 1u);
  }
  EXPECT_TRUE(dir_entries(dir.path()).empty());
}

TEST(SafetensorsWriter, ReplacesAnExistingFileOnlyAtFinish) {
  TempDir dir;
  const auto path = dir / "w.safetensors";
  const auto v = pattern(2, 5);
  write_safetensors(path, {{"old", TensorView{DType::U8, {2}, v.data(), 2}}});
  {
    SafetensorsWriter w(path);
    w.declare("new", DType::U8, {2});
    w.write(v);
    EXPECT_NE(SafetensorsFile::open(path)->find("old"), nullptr);
    w.finish();
  }
  const auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->find("old"), nullptr);
  EXPECT_NE(file->find("new"), nullptr);
}

TEST(SafetensorsWriter, DeclarationErrors) {
  TempDir dir;
  SafetensorsWriter w(dir / "w.safetensors");
  w.declare("t", DType::U8, {1});
  EXPECT_NE(error_of([&] {
              w.declare("t", DType::U8, {1});
            }).find("w.safetensors: tensor 't' declared twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.declare("neg", DType::U8, {2, -3});
            }).find("w.safetensors: tensor 'neg': shape [2, -3] has a negative dim"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              w.declare("huge", DType::F64, {int64_t{1} << 40, int64_t{1} << 40});
            }).find("tensor 'huge': shape [1099511627776, 1099511627776] of F64 needs more"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.declare("__metadata__", DType::U8, {1}); }).find("__metadata__"),
            std::string::npos);
  w.write(pattern(1, 0));
  EXPECT_NE(error_of([&] {
              w.declare("late", DType::U8, {1});
            }).find("w.safetensors: tensor 'late' declared after writing started"),
            std::string::npos);
}

TEST(SafetensorsWriter, NameThatIsNotUtf8) {
  TempDir dir;
  SafetensorsWriter w(dir / "w.safetensors");
  w.declare("bad\xff", DType::U8, {0});
  const std::string msg = error_of([&] { w.finish(); });
  EXPECT_NE(msg.find("w.safetensors: cannot encode the header"), std::string::npos) << msg;
  EXPECT_TRUE(dir_entries(dir.path()).empty());
}

TEST(SafetensorsWriter, UnwritableDirectory) {
  TempDir dir;
  const std::string msg =
      error_of([&] { write_safetensors(dir / "no" / "such" / "dir" / "x.safetensors", {}); });
  EXPECT_NE(msg.find("x.safetensors: cannot create a temporary file"), std::string::npos) << msg;
}

TEST(SafetensorsWriter, WriteSafetensorsChecksViewSizes) {
  TempDir dir;
  const auto v = pattern(6, 0);
  const std::string msg = error_of([&] {
    write_safetensors(dir / "w.safetensors", {{"t", TensorView{DType::F32, {2}, v.data(), 6}}});
  });
  EXPECT_NE(msg.find("w.safetensors: tensor 't': 6 bytes written but shape [2] of F32 needs 8"),
            std::string::npos)
      << msg;
  EXPECT_TRUE(dir_entries(dir.path()).empty());
}

}  // namespace
}  // namespace fp8llm
