#include "formats/safetensors.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/file_util.h"

namespace fp8llm {
namespace {

using Json = nlohmann::json;

uint64_t read_le64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

// The deepest valid header is top object > tensor entry > shape list (depth 3). Anything nested
// further is rejected while parsing, so a hostile header cannot build a deep tree.
constexpr int kMaxJsonDepth = 3;

Json parse_header_json(std::string_view text, const std::string& label) {
  std::set<std::string, std::less<>> top_keys;
  std::string duplicate;
  const Json::parser_callback_t check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      fail("{}: header is nested deeper than a safetensors header can be", label);
    }
    // nlohmann keeps the last of duplicate keys; a duplicated tensor name would silently hide one
    // entry, so it is an error.
    if (event == Json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!top_keys.insert(key).second)
        fail("{}: tensor '{}' appears twice in the header", label, key);
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), check, /*allow_exceptions=*/true);
  } catch (const Json::exception& e) {
    fail("{}: header is not valid JSON: {}", label, e.what());
  }
}

uint64_t checked_u64(const Json& v, bool& ok) {
  ok = v.is_number_unsigned();
  return ok ? v.get<uint64_t>() : 0;
}

TensorInfo parse_entry(const std::string& name, const Json& entry, uint64_t data_start,
                       uint64_t data_size, const std::string& label) {
  const auto where = [&] { return fmt::format("{}: tensor '{}'", label, name); };
  if (!entry.is_object())
    fail("{}: entry is {}, expected an object with dtype, shape and data_offsets", where(),
         entry.type_name());
  // Unknown fields are ignored, as the reference implementation does.
  const auto dtype_it = entry.find("dtype");
  const auto shape_it = entry.find("shape");
  const auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end()) fail("{}: missing 'dtype'", where());
  if (shape_it == entry.end()) fail("{}: missing 'shape'", where());
  if (offsets_it == entry.end()) fail("{}: missing 'data_offsets'", where());

  TensorInfo info;
  info.name = name;
  if (!dtype_it->is_string()) fail("{}: dtype is {}, expected a string", where(), dtype_it->dump());
  const auto& dtype_str = dtype_it->get_ref<const std::string&>();
  const auto dtype = dtype_from_name(dtype_str);
  if (!dtype) fail("{}: unknown dtype '{}'", where(), dtype_str);
  info.dtype = *dtype;

  if (!shape_it->is_array())
    fail("{}: shape is {}, expected a list of non-negative integers", where(), shape_it->dump());
  // Elements and bytes the shape needs, with overflow detection: a header may claim dims whose
  // product does not fit in 64 bits. The element count must fit in int64 even when a zero dim
  // makes the tensor empty, since code downstream multiplies dims in int64.
  uint64_t elements = 1;  // product of the non-zero dims
  bool has_zero = false;
  bool too_many = false;
  constexpr auto kMaxElements = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (size_t i = 0; i < shape_it->size(); ++i) {
    const Json& d = (*shape_it)[i];
    bool ok = false;
    const uint64_t dim = checked_u64(d, ok);
    if (!ok || dim > kMaxElements) {
      fail("{}: shape {} has entry {} = {}, expected a non-negative integer", where(),
           shape_it->dump(), i, d.dump());
    }
    info.shape.push_back(static_cast<int64_t>(dim));
    if (dim == 0) {
      has_zero = true;
    } else if (elements > kMaxElements / dim) {
      too_many = true;
    } else {
      elements *= dim;
    }
  }
  const Json& offs = *offsets_it;
  bool ok_begin = false, ok_end = false;
  uint64_t begin = 0, end = 0;
  if (offs.is_array() && offs.size() == 2) {
    begin = checked_u64(offs[0], ok_begin);
    end = checked_u64(offs[1], ok_end);
  }
  if (!ok_begin || !ok_end)
    fail("{}: data_offsets is {}, expected [begin, end] of non-negative integers", where(),
         offs.dump());
  if (begin > end) fail("{}: data_offsets [{}, {}] end before they begin", where(), begin, end);
  if (end > data_size) {
    fail("{}: data_offsets [{}, {}] go past the end of the file (the data section holds {} bytes)",
         where(), begin, end, data_size);
  }
  const uint64_t held = end - begin;
  const uint64_t elem_size = dtype_size(info.dtype);
  if (too_many) {
    fail("{}: shape {} has more than 2^63 elements", where(), shape_str(info.shape));
  }
  if (!has_zero && elements > std::numeric_limits<uint64_t>::max() / elem_size) {
    fail("{}: data_offsets [{}, {}] hold {} bytes but shape {} of {} needs more than 2^64", where(),
         begin, end, held, shape_str(info.shape), dtype_str);
  }
  const uint64_t needed = has_zero ? 0 : elements * elem_size;
  if (held != needed) {
    fail("{}: data_offsets [{}, {}] hold {} bytes but shape {} of {} needs {}", where(), begin, end,
         held, shape_str(info.shape), dtype_str, needed);
  }
  info.offset = data_start + begin;
  info.nbytes = held;
  return info;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file_bytes,
                                           uint64_t file_size, const std::string& label) {
  if (file_size < 8 || file_bytes.size() < 8) {
    fail("{}: file is {} bytes, too short for the 8-byte header length", label, file_size);
  }
  const uint64_t header_len = read_le64(file_bytes.data());
  if (header_len > kMaxSafetensorsHeader) {
    fail("{}: header length {} is larger than the {} byte limit (not a safetensors file?)", label,
         header_len, kMaxSafetensorsHeader);
  }
  if (header_len > file_size - 8) {
    fail("{}: header length {} goes past the end of the {} byte file (truncated?)", label,
         header_len, file_size);
  }
  if (file_bytes.size() < 8 + header_len) {
    fail("{}: only {} bytes given, the header needs {}", label, file_bytes.size(), 8 + header_len);
  }
  const std::string_view text(reinterpret_cast<const char*>(file_bytes.data()) + 8, header_len);
  const Json json = parse_header_json(text, label);
  if (!json.is_object())
    fail("{}: header is a JSON {}, expected an object", label, json.type_name());

  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  const uint64_t data_size = file_size - header.data_start;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        fail("{}: __metadata__ is {}, expected an object", label, value.dump());
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string())
          fail("{}: __metadata__ '{}' is {}, expected a string", label, mkey, mvalue.dump());
        header.metadata.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    header.tensors.push_back(parse_entry(key, value, header.data_start, data_size, label));
  }

  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) {
              if (a.offset != b.offset) return a.offset < b.offset;
              if (a.nbytes != b.nbytes) return a.nbytes < b.nbytes;
              return a.name < b.name;
            });
  // In offset order, a tensor overlaps an earlier one iff it starts before the furthest end seen
  // so far. Empty tensors hold no bytes and cannot overlap anything.
  const TensorInfo* furthest = nullptr;
  for (const auto& t : header.tensors) {
    if (t.nbytes == 0) continue;
    if (furthest && t.offset < furthest->offset + furthest->nbytes) {
      const uint64_t ds = header.data_start;
      fail("{}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' at [{}, {}]", label, t.name,
           t.offset - ds, t.offset + t.nbytes - ds, furthest->name, furthest->offset - ds,
           furthest->offset + furthest->nbytes - ds);
    }
    if (!furthest || t.offset + t.nbytes > furthest->offset + furthest->nbytes) furthest = &t;
  }
  return header;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  auto file = std::make_shared<SafetensorsFile>(Key{});
  file->path_ = path;
  const std::string label = path.string();
  uint64_t size = 0;
  file->fd_ = open_regular_file(path, &size);
  file->size_ = size;
  if (file->size_ < 8) {
    fail("{}: file is {} bytes, too short for the 8-byte header length", label, file->size_);
  }
  // MAP_SHARED read-only: pages come straight from the page cache, views never copy.
  void* map = ::mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, file->fd_, 0);
  if (map == MAP_FAILED) fail("{}: cannot map: {}", label, std::strerror(errno));
  file->map_ = static_cast<const std::byte*>(map);
  file->header_ = parse_safetensors_header({file->map_, file->size_}, file->size_, label);
  const auto& tensors = file->header_.tensors;
  for (size_t i = 0; i < tensors.size(); ++i) file->index_.emplace(tensors[i].name, i);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<std::byte*>(map_), size_);
  if (fd_ >= 0) ::close(fd_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

TensorView SafetensorsFile::view(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (!info) fail("{}: no tensor '{}'", path_.string(), name);
  return view(*info);
}

TensorView SafetensorsFile::view(const TensorInfo& info) const {
  return {info.dtype, info.shape, map_ + info.offset, static_cast<size_t>(info.nbytes)};
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

struct Declared {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t nbytes;
};

}  // namespace

struct SafetensorsWriter::Impl {
  std::filesystem::path path;
  std::map<std::string, std::string> metadata;
  std::vector<Declared> declared;
  std::set<std::string, std::less<>> names;
  std::optional<OutputFile> file;
  std::FILE* out = nullptr;  // file->stream() once started
  bool started = false;
  bool finished = false;
  bool failed = false;
  size_t current = 0;         // index of the tensor being written
  uint64_t current_done = 0;  // bytes of it written so far

  std::string label() const { return path.string(); }

  // Moves past tensors whose bytes are complete (including empty ones).
  void skip_complete() {
    while (current < declared.size() && current_done == declared[current].nbytes) {
      ++current;
      current_done = 0;
    }
  }

  void put(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, out) != n)
      fail("{}: write failed: {}", file->writing_to().string(), std::strerror(errno));
  }
};

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path,
                                     std::map<std::string, std::string> metadata)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = std::move(path);
  impl_->metadata = std::move(metadata);
}

// The OutputFile removes an unfinished temporary file.
SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::declare(const std::string& name, DType dtype, const Shape& shape) {
  Impl& w = *impl_;
  if (w.started) fail("{}: tensor '{}' declared after writing started", w.label(), name);
  if (name == "__metadata__") fail("{}: '__metadata__' cannot be a tensor name", w.label());
  if (w.names.contains(name)) fail("{}: tensor '{}' declared twice", w.label(), name);
  uint64_t nbytes = dtype_size(dtype);
  bool overflow = false;
  for (int64_t d : shape) {
    if (d < 0)
      fail("{}: tensor '{}': shape {} has a negative dim", w.label(), name, shape_str(shape));
    const auto dim = static_cast<uint64_t>(d);
    if (dim != 0 && nbytes > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
    nbytes *= dim;
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    nbytes = 0;
  } else if (overflow) {
    fail("{}: tensor '{}': shape {} of {} needs more than 2^64 bytes", w.label(), name,
         shape_str(shape), dtype_name(dtype));
  }
  w.names.insert(name);
  w.declared.push_back({name, dtype, shape, nbytes});
}

void SafetensorsWriter::begin() {
  Impl& w = *impl_;
  // The header: tensors in declared order, stored back to back from offset 0 (the reference
  // reader rejects gaps). nlohmann::ordered_json keeps that order in the text.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!w.metadata.empty()) header["__metadata__"] = w.metadata;
  uint64_t offset = 0;
  for (const auto& t : w.declared) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: cannot encode the header (names must be UTF-8): {}", w.label(), e.what());
  }
  // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxSafetensorsHeader)
    fail("{}: header of {} bytes is larger than the {} byte limit", w.label(), text.size(),
         kMaxSafetensorsHeader);

  w.file.emplace(w.path);
  w.out = w.file->stream();
  w.started = true;
  std::array<unsigned char, 8> len{};
  for (size_t i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  w.put(len.data(), len.size());
  w.put(text.data(), text.size());
}

void SafetensorsWriter::write(std::span<const std::byte> bytes) {
  Impl& w = *impl_;
  if (w.finished) fail("{}: write after finish()", w.label());
  if (w.failed) fail("{}: write after an earlier write failed", w.label());
  try {
    if (!w.started) begin();
    if (bytes.empty()) return;
    w.skip_complete();
    if (w.current == w.declared.size()) {
      fail("{}: {} bytes written after the last declared tensor", w.label(), bytes.size());
    }
    const Declared& t = w.declared[w.current];
    if (bytes.size() > t.nbytes - w.current_done) {
      fail("{}: tensor '{}': {} bytes written but shape {} of {} holds {}", w.label(), t.name,
           w.current_done + bytes.size(), shape_str(t.shape), dtype_name(t.dtype), t.nbytes);
    }
    w.put(bytes.data(), bytes.size());
    w.current_done += bytes.size();
  } catch (...) {
    w.failed = true;
    throw;
  }
}

void SafetensorsWriter::finish() {
  Impl& w = *impl_;
  if (w.finished) fail("{}: finish() called twice", w.label());
  if (w.failed) fail("{}: not written, an earlier write failed", w.label());
  try {
    if (!w.started) begin();
    w.skip_complete();
    if (w.current < w.declared.size()) {
      const Declared& t = w.declared[w.current];
      fail("{}: tensor '{}': {} bytes written but shape {} of {} needs {}", w.label(), t.name,
           w.current_done, shape_str(t.shape), dtype_name(t.dtype), t.nbytes);
    }
    w.out = nullptr;
    w.file->commit();
    w.finished = true;
  } catch (...) {
    w.failed = true;
    throw;
  }
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, TensorView>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter writer(path, metadata);
  for (const auto& [name, view] : tensors) writer.declare(name, view.dtype, view.shape);
  for (const auto& [name, view] : tensors) writer.write({view.data, view.nbytes});
  writer.finish();
}

}  // namespace fp8llm
