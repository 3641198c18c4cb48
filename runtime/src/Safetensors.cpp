// The .safetensors format, F32 tensors only: https://github.com/huggingface/safetensors
//
//   u64 little-endian N | N bytes of JSON header | data section
//
// Each header entry but "__metadata__" is {"dtype", "shape", "data_offsets": [begin, end]},
// offsets relative to the data section. The entries must tile the data section exactly, so
// no byte is read twice or left unexplained.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "InputFile.h"
#include "cnv/Error.h"
#include "cnv/Io.h"

namespace cnv {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors F32 data is copied as is, which needs a little-endian host");

namespace {

using Json = nlohmann::json;

constexpr size_t kSizeFieldBytes = 8;
// The reference implementation's limit; a bigger header is a corrupt size field.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kHeaderAlignment = 8;
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kNoOverlapsOrHoles = "tensor data may not overlap or leave holes";

struct Entry {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// What the header says: the entries sorted by offset, and the data section size they cover.
struct Layout {
  std::vector<Entry> entries;
  uint64_t dataBytes = 0;
};

// A tensor name as a JSON string, for messages. Names from formatSafetensors' caller may be
// invalid UTF-8, which dump() would otherwise throw on.
std::string quotedName(const std::string& name) {
  return Json(name).dump(-1, ' ', false, Json::error_handler_t::replace);
}

uint64_t readHeaderSize(std::string_view bytes, const std::string& what) {
  if (bytes.size() < kSizeFieldBytes) {
    throw dataError(what + ": truncated .safetensors file (no header size)");
  }
  uint64_t size = 0;
  for (size_t i = 0; i < kSizeFieldBytes; ++i) {
    size |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  if (size > kMaxHeaderBytes) {
    throw dataError(what + ": not a .safetensors file (header size " + std::to_string(size) +
                    " is larger than " + std::to_string(kMaxHeaderBytes) + " bytes)");
  }
  return size;
}

// nlohmann::json keeps the last of duplicate keys silently; a weight file with two values for
// one tensor is ambiguous, so the parse callback watches every object's keys.
Json parseHeaderJson(std::string_view text, const std::string& what) {
  // As in the reference implementation: this also turns most wrong files away early.
  if (text.empty() || text.front() != '{') {
    throw dataError(what + ": not a .safetensors file (the header does not start with '{')");
  }
  std::vector<std::set<std::string>> keysOfOpenObjects;
  std::optional<std::string> duplicate;
  auto watchKeys = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      keysOfOpenObjects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      keysOfOpenObjects.pop_back();
    } else if (event == Json::parse_event_t::key && !keysOfOpenObjects.empty() &&
               !keysOfOpenObjects.back().insert(parsed.get<std::string>()).second && !duplicate) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text.begin(), text.end(), watchKeys);
  } catch (const Json::exception& e) {
    throw dataError(what + ": invalid JSON in the .safetensors header: " + e.what());
  }
  if (duplicate) {
    throw dataError(what + ": the .safetensors header has a duplicate key " +
                    quotedName(*duplicate));
  }
  if (!header.is_object()) throw dataError(what + ": the .safetensors header is not a JSON object");
  return header;
}

std::optional<uint64_t> nonNegativeInteger(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

Entry parseEntry(const std::string& name, const Json& info, const std::string& what) {
  const std::string tensor = what + ": tensor " + quotedName(name);
  if (!info.is_object()) throw dataError(tensor + ": its header entry is not a JSON object");
  for (const auto& field : info.items()) {
    if (field.key() != "dtype" && field.key() != "shape" && field.key() != "data_offsets") {
      throw dataError(tensor + ": unknown field " + quotedName(field.key()));
    }
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(field)) throw dataError(tensor + ": missing field \"" + field + "\"");
  }

  const Json& dtype = info["dtype"];
  if (!dtype.is_string()) throw dataError(tensor + ": dtype is not a string");
  if (dtype.get<std::string>() != "F32") {
    throw dataError(tensor + ": unsupported dtype " + dtype.dump() + " (only F32 is supported)");
  }

  Entry entry;
  entry.name = name;
  const Json& shape = info["shape"];
  if (!shape.is_array()) throw dataError(tensor + ": shape is not an array");
  for (const Json& dim : shape) {
    const std::optional<uint64_t> value = nonNegativeInteger(dim);
    if (!value || *value > INT64_MAX) {
      throw dataError(tensor + ": shape " + shape.dump() + " must hold non-negative integers");
    }
    entry.shape.push_back(static_cast<int64_t>(*value));
  }
  uint64_t bytes = 0;
  try {
    bytes = static_cast<uint64_t>(elementCount(entry.shape)) * sizeof(float);
  } catch (const Error& e) {
    throw dataError(tensor + ": " + e.what());
  }

  const Json& offsets = info["data_offsets"];
  std::optional<uint64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = nonNegativeInteger(offsets[0]);
    end = nonNegativeInteger(offsets[1]);
  }
  if (!begin || !end) {
    throw dataError(tensor + ": data_offsets " + offsets.dump() +
                    " must be two non-negative integers [begin, end]");
  }
  if (*end < *begin) {
    throw dataError(tensor + ": data_offsets " + offsets.dump() + " end before they begin");
  }
  if (*end - *begin != bytes) {
    throw dataError(tensor + ": data_offsets " + offsets.dump() + " span " +
                    std::to_string(*end - *begin) + " bytes but shape " + shapeString(entry.shape) +
                    " needs " + std::to_string(bytes));
  }
  entry.begin = *begin;
  entry.end = *end;
  return entry;
}

void checkMetadata(const Json& metadata, const std::string& what) {
  // Optional in the reference implementation, so null is as good as absent.
  const bool valid =
      metadata.is_null() ||
      (metadata.is_object() && std::all_of(metadata.begin(), metadata.end(),
                                           [](const Json& value) { return value.is_string(); }));
  if (!valid) {
    throw dataError(what + ": \"__metadata__\" must be an object of strings");
  }
}

std::string describe(const Entry& entry) {
  return quotedName(entry.name) + " [" + std::to_string(entry.begin) + ", " +
         std::to_string(entry.end) + ")";
}

Layout parseLayout(std::string_view headerText, const std::string& what) {
  const Json header = parseHeaderJson(headerText, what);
  Layout layout;
  for (const auto& item : header.items()) {
    if (item.key() == kMetadataKey) {
      checkMetadata(item.value(), what);
    } else {
      layout.entries.push_back(parseEntry(item.key(), item.value(), what));
    }
  }
  std::sort(layout.entries.begin(), layout.entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  for (size_t i = 0; i < layout.entries.size(); ++i) {
    const Entry& entry = layout.entries[i];
    // The entries before tile [0, dataBytes), so only the one just before can overlap.
    if (entry.begin < layout.dataBytes) {
      throw dataError(what + ": tensors " + describe(layout.entries[i - 1]) + " and " +
                      describe(entry) + " overlap (" + kNoOverlapsOrHoles + ")");
    }
    if (entry.begin > layout.dataBytes) {
      throw dataError(what + ": hole in the data section: bytes [" +
                      std::to_string(layout.dataBytes) + ", " + std::to_string(entry.begin) +
                      ") before tensor " + describe(entry) + " belong to no tensor (" +
                      kNoOverlapsOrHoles + ")");
    }
    layout.dataBytes = entry.end;
  }
  return layout;
}

void checkDataSectionSize(const Layout& layout, uint64_t available, const std::string& what) {
  if (available < layout.dataBytes) {
    throw dataError(what + ": truncated .safetensors file: tensor " +
                    describe(layout.entries.back()) + " runs past the end of the data section (" +
                    std::to_string(available) + " bytes)");
  }
  if (available > layout.dataBytes) {
    throw dataError(what + ": hole at the end of the data section: " +
                    std::to_string(available - layout.dataBytes) +
                    " trailing bytes belong to no tensor (" + kNoOverlapsOrHoles + ")");
  }
}

std::map<std::string, Tensor> tensorsFromData(const Layout& layout, std::string_view data) {
  std::map<std::string, Tensor> tensors;
  for (const Entry& entry : layout.entries) {
    Tensor tensor(entry.shape);
    if (entry.end > entry.begin) {
      std::memcpy(tensor.data(), data.data() + entry.begin, entry.end - entry.begin);
    }
    tensors.emplace(entry.name, std::move(tensor));
  }
  return tensors;
}

}  // namespace

std::map<std::string, Tensor> parseSafetensors(std::string_view bytes, const std::string& what) {
  const uint64_t headerBytes = readHeaderSize(bytes, what);
  if (headerBytes > bytes.size() - kSizeFieldBytes) {
    throw dataError(what + ": truncated .safetensors file (header size " +
                    std::to_string(headerBytes) + " runs past the end of the file)");
  }
  const Layout layout = parseLayout(bytes.substr(kSizeFieldBytes, headerBytes), what);
  const std::string_view data = bytes.substr(kSizeFieldBytes + headerBytes);
  checkDataSectionSize(layout, data.size(), what);
  return tensorsFromData(layout, data);
}

std::map<std::string, Tensor> readSafetensors(const std::string& path) {
  InputFile file(path);
  std::string bytes;
  file.readInto(bytes, kSizeFieldBytes);
  const uint64_t headerBytes = readHeaderSize(bytes, path);
  file.readInto(bytes, headerBytes);
  if (bytes.size() < kSizeFieldBytes + headerBytes) return parseSafetensors(bytes, path);

  const Layout layout =
      parseLayout(std::string_view(bytes).substr(kSizeFieldBytes, headerBytes), path);
  const size_t dataBegin = kSizeFieldBytes + headerBytes;
  file.readInto(bytes, layout.dataBytes);
  checkDataSectionSize(layout, bytes.size() - dataBegin + file.bytesLeftAtLeast(), path);
  return tensorsFromData(layout, std::string_view(bytes).substr(dataBegin));
}

std::string formatSafetensors(const std::map<std::string, Tensor>& tensors) {
  Json header = Json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) {
      throw usageError("formatSafetensors: \"__metadata__\" cannot name a tensor");
    }
    if (tensor.size() != elementCount(tensor.shape())) {
      throw usageError("formatSafetensors: tensor " + quotedName(name) + " of shape " +
                       shapeString(tensor.shape()) + " cannot hold " +
                       std::to_string(tensor.size()) + " elements");
    }
    const uint64_t bytes = static_cast<uint64_t>(tensor.size()) * sizeof(float);
    header[name] = {
        {"dtype", "F32"}, {"shape", tensor.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string headerText;
  try {
    headerText = header.dump();
  } catch (const Json::exception& e) {
    throw usageError(std::string("formatSafetensors: a tensor name is not valid UTF-8: ") +
                     e.what());
  }
  headerText.append((kHeaderAlignment - headerText.size() % kHeaderAlignment) % kHeaderAlignment,
                    ' ');

  std::string bytes;
  for (size_t i = 0; i < kSizeFieldBytes; ++i) {
    bytes += static_cast<char>((uint64_t{headerText.size()} >> (8 * i)) & 0xff);
  }
  bytes += headerText;
  for (const auto& entry : tensors) {
    const Tensor& tensor = entry.second;
    bytes.append(reinterpret_cast<const char*>(tensor.data()),
                 static_cast<size_t>(tensor.size()) * sizeof(float));
  }
  return bytes;
}

}  // namespace cnv
