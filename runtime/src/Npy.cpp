// The .npy format, version 1.0-3.0, restricted to C-order little-endian float32:
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// The header is a Python dict literal. It is read by a small strict parser that knows only
// the three keys NumPy writes and the value types they take; nothing is ever evaluated.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "InputFile.h"
#include "cnv/Error.h"
#include "cnv/Io.h"

namespace cnv {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              ".npy '<f4' data is copied as is, which needs a little-endian host");
static_assert(sizeof(float) == 4, "'<f4' is a 4-byte float");

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kVersionEnd = kMagic.size() + 2;
constexpr size_t kLongestPrefix = kVersionEnd + 4;  // magic, version, 4-byte header length
// NumPy aligns the data to 64 bytes and reserves header room to grow the first dim in place
// (numpy >= 1.23); matching both makes our files byte-identical to numpy.save's.
constexpr size_t kAlignment = 64;
constexpr size_t kGrowthAxisMaxDigits = 21;

// Quotes text from a file for an error message, escaping bytes a terminal might act on.
std::string quoted(std::string_view text) {
  std::string out = "'";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  return out + "'";
}

uint64_t readLittleEndian(std::string_view bytes, size_t offset, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

// Where the header text lies, from the fixed-size prefix before it.
struct NpyPrefix {
  int majorVersion = 0;
  size_t headerBegin = 0;
  uint64_t headerEnd = 0;  // also where the data begins
};

NpyPrefix parseNpyPrefix(std::string_view bytes, const std::string& what) {
  const size_t magicSeen = std::min(bytes.size(), kMagic.size());
  if (bytes.substr(0, magicSeen) != kMagic.substr(0, magicSeen)) {
    throw dataError(what + ": not an .npy file (bad magic)");
  }
  if (bytes.size() < kVersionEnd) throw dataError(what + ": truncated .npy file (no version)");
  NpyPrefix prefix;
  prefix.majorVersion = static_cast<unsigned char>(bytes[kMagic.size()]);
  const int minorVersion = static_cast<unsigned char>(bytes[kMagic.size() + 1]);
  if (prefix.majorVersion < 1 || prefix.majorVersion > 3 || minorVersion != 0) {
    throw dataError(what + ": unsupported .npy version " + std::to_string(prefix.majorVersion) +
                    "." + std::to_string(minorVersion) + " (1.0, 2.0 and 3.0 are supported)");
  }
  const size_t lengthWidth = prefix.majorVersion == 1 ? 2 : 4;
  prefix.headerBegin = kVersionEnd + lengthWidth;
  if (bytes.size() < prefix.headerBegin) {
    throw dataError(what + ": truncated .npy file (no header length)");
  }
  prefix.headerEnd = prefix.headerBegin + readLittleEndian(bytes, kVersionEnd, lengthWidth);
  return prefix;
}

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string_view text, int majorVersion, const std::string& what)
      : text_(text), majorVersion_(majorVersion), what_(what) {}

  std::vector<int64_t> parse() {
    std::optional<std::string> descr;
    std::optional<bool> fortranOrder;
    std::optional<std::vector<int64_t>> shape;

    skipSpace();
    expect('{');
    skipSpace();
    while (!peek('}')) {
      const size_t keyColumn = pos_;
      const std::string key = parseString();
      skipSpace();
      expect(':');
      skipSpace();
      if (key == "descr") {
        if (descr) duplicateKey(key);
        if (!peek('\'') && !peek('"')) {
          throw dataError(what_ + ": unsupported dtype: structured dtypes are not supported " +
                          "(only '<f4', little-endian float32, is)");
        }
        descr = parseString();
      } else if (key == "fortran_order") {
        if (fortranOrder) duplicateKey(key);
        fortranOrder = parseBool();
      } else if (key == "shape") {
        if (shape) duplicateKey(key);
        shape = parseShape();
      } else {
        pos_ = keyColumn;
        fail("unexpected key " + quoted(key) +
             " (only 'descr', 'fortran_order' and 'shape' are allowed)");
      }
      skipSpace();
      if (peek('}')) break;
      if (!peek(',')) fail("expected ',' or '}'");
      ++pos_;
      skipSpace();
    }
    expect('}');
    skipSpace();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");

    if (!descr) missingKey("descr");
    if (!fortranOrder) missingKey("fortran_order");
    if (!shape) missingKey("shape");
    if (*descr != "<f4") {
      throw dataError(what_ + ": unsupported dtype " + quoted(*descr) +
                      " (only '<f4', little-endian float32, is supported)");
    }
    if (*fortranOrder) {
      throw dataError(what_ + ": fortran_order True is not supported (save a C-order array)");
    }
    return *shape;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw dataError(what_ + ": malformed .npy header at column " + std::to_string(pos_ + 1) + ": " +
                    problem);
  }
  [[noreturn]] void missingKey(const std::string& key) const {
    throw dataError(what_ + ": .npy header has no " + quoted(key) + " key");
  }
  [[noreturn]] void duplicateKey(const std::string& key) const {
    throw dataError(what_ + ": .npy header has a duplicate key " + quoted(key));
  }

  bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  // Python allows any of these between tokens inside brackets.
  void skipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
            text_[pos_] == '\r' || text_[pos_] == '\f')) {
      ++pos_;
    }
  }
  bool isIdentifierChar(size_t at) const {
    if (at >= text_.size()) return false;
    const char c = text_[at];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
  }

  // A plain '...' or "..." literal; escapes, prefixes and line breaks have no use in a
  // header NumPy writes, so they are rejected rather than interpreted.
  std::string parseString() {
    if (!peek('\'') && !peek('"')) fail("expected a quoted string");
    const char quote = text_[pos_++];
    const size_t begin = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') fail("escape sequences are not supported in the header");
      if (text_[pos_] == '\n' || text_[pos_] == '\r') fail("unterminated string");
      ++pos_;
    }
    if (pos_ == text_.size()) fail("unterminated string");
    return std::string(text_.substr(begin, pos_++ - begin));
  }

  bool parseBool() {
    for (const auto& [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word && !isIdentifierChar(pos_ + word.size())) {
        pos_ += word.size();
        return value;
      }
    }
    fail("fortran_order must be True or False");
  }

  int64_t parseDim() {
    if (peek('-')) fail("shape has a negative dimension");
    const size_t begin = pos_;
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_add_overflow(value, text_[pos_] - '0', &value)) {
        fail("shape dimension is too large");
      }
      ++pos_;
    }
    if (pos_ == begin) fail("shape must be a tuple of non-negative integers");
    if (text_[begin] == '0' && pos_ - begin > 1) fail("integers may not have leading zeros");
    // Python 2 wrote longs as 3L; NumPy still reads such version 1.0 and 2.0 files.
    if (majorVersion_ <= 2 && peek('L')) ++pos_;
    if (isIdentifierChar(pos_) || peek('.')) fail("shape must be a tuple of non-negative integers");
    return value;
  }

  // "()", "(3,)", "(2, 3)" or "(2, 3,)"; "(3)" is an int in Python, not a tuple.
  std::vector<int64_t> parseShape() {
    if (!peek('(')) fail("shape must be a tuple such as (2, 3)");
    ++pos_;
    skipSpace();
    std::vector<int64_t> shape;
    while (!peek(')')) {
      shape.push_back(parseDim());
      skipSpace();
      if (peek(')') && shape.size() == 1) fail("shape (n) is not a tuple; write (n,)");
      if (peek(')')) break;
      expect(',');
      skipSpace();
    }
    ++pos_;
    return shape;
  }

  std::string_view text_;
  int majorVersion_;
  const std::string& what_;
  size_t pos_ = 0;
};

uint64_t dataBytesOf(const std::vector<int64_t>& shape, const std::string& what) {
  try {
    return static_cast<uint64_t>(elementCount(shape)) * sizeof(float);
  } catch (const Error& e) {
    throw dataError(what + ": " + e.what());
  }
}

[[noreturn]] void throwDataSizeMismatch(const std::string& what, const std::vector<int64_t>& shape,
                                        uint64_t needed, uint64_t available) {
  const std::string needs =
      "shape " + shapeString(shape) + " needs " + std::to_string(needed) + " bytes of data";
  if (available < needed) {
    throw dataError(what + ": truncated .npy file: " + needs + ", the file has " +
                    std::to_string(available));
  }
  throw dataError(what + ": " + std::to_string(available - needed) +
                  " trailing bytes after the data (" + needs + ")");
}

Tensor tensorFromBytes(std::vector<int64_t> shape, std::string_view data) {
  Tensor tensor(std::move(shape));
  if (!data.empty()) std::memcpy(tensor.data(), data.data(), data.size());
  return tensor;
}

std::string pythonTuple(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

// Pads `dict` as numpy.lib.format does and prepends magic, version and header length.
std::string npyHeader(const std::string& dict, int majorVersion) {
  const size_t lengthWidth = majorVersion == 1 ? 2 : 4;
  const size_t unpadded = kVersionEnd + lengthWidth + dict.size() + 1;  // + '\n'
  const size_t padding = kAlignment - unpadded % kAlignment;
  const uint64_t headerLength = dict.size() + padding + 1;
  std::string header(kMagic);
  header += static_cast<char>(majorVersion);
  header += '\0';
  for (size_t i = 0; i < lengthWidth; ++i) {
    header += static_cast<char>((headerLength >> (8 * i)) & 0xff);
  }
  header += dict;
  header.append(padding, ' ');
  header += '\n';
  return header;
}

}  // namespace

Tensor parseNpy(std::string_view bytes, const std::string& what) {
  const NpyPrefix prefix = parseNpyPrefix(bytes, what);
  if (prefix.headerEnd > bytes.size()) {
    throw dataError(what + ": truncated .npy file (the header length " +
                    std::to_string(prefix.headerEnd - prefix.headerBegin) +
                    " runs past the end of the file)");
  }
  const std::string_view headerText =
      bytes.substr(prefix.headerBegin, prefix.headerEnd - prefix.headerBegin);
  std::vector<int64_t> shape = NpyHeaderParser(headerText, prefix.majorVersion, what).parse();
  const uint64_t dataBytes = dataBytesOf(shape, what);
  const std::string_view data = bytes.substr(prefix.headerEnd);
  if (data.size() != dataBytes) throwDataSizeMismatch(what, shape, dataBytes, data.size());
  return tensorFromBytes(std::move(shape), data);
}

Tensor readNpy(const std::string& path) {
  InputFile file(path);
  std::string bytes;
  file.readInto(bytes, kLongestPrefix);
  const NpyPrefix prefix = parseNpyPrefix(bytes, path);
  if (bytes.size() < prefix.headerEnd) file.readInto(bytes, prefix.headerEnd - bytes.size());
  if (bytes.size() < prefix.headerEnd) return parseNpy(bytes, path);  // reports the truncation

  const std::string_view headerText =
      std::string_view(bytes).substr(prefix.headerBegin, prefix.headerEnd - prefix.headerBegin);
  std::vector<int64_t> shape = NpyHeaderParser(headerText, prefix.majorVersion, path).parse();
  const uint64_t dataBytes = dataBytesOf(shape, path);
  const uint64_t total = prefix.headerEnd + dataBytes;
  if (bytes.size() < total) file.readInto(bytes, total - bytes.size());
  // Past a (bogus) header shorter than 2 bytes, the prefix read already holds some data.
  const uint64_t available = bytes.size() - prefix.headerEnd + file.bytesLeftAtLeast();
  if (available != dataBytes) throwDataSizeMismatch(path, shape, dataBytes, available);
  return tensorFromBytes(std::move(shape), std::string_view(bytes).substr(prefix.headerEnd));
}

std::string formatNpy(const Tensor& tensor) {
  const std::vector<int64_t>& shape = tensor.shape();
  if (tensor.size() != elementCount(shape)) {
    throw usageError("formatNpy: a tensor of shape " + shapeString(shape) + " cannot hold " +
                     std::to_string(tensor.size()) + " elements");
  }
  std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + pythonTuple(shape) + ", }";
  if (!shape.empty()) {
    dict.append(kGrowthAxisMaxDigits - std::to_string(shape.front()).size(), ' ');
  }
  std::string bytes = npyHeader(dict, 1);
  if (bytes.size() - kVersionEnd - 2 > 0xffff) bytes = npyHeader(dict, 2);
  bytes.append(reinterpret_cast<const char*>(tensor.data()),
               static_cast<size_t>(tensor.size()) * sizeof(float));
  return bytes;
}

void writeNpy(const std::string& path, const Tensor& tensor) {
  const std::string bytes = formatNpy(tensor);
  FILE* out = std::fopen(path.c_str(), "wb");
  if (!out) throw dataError(path + ": cannot write: " + std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size();
  const int writeErrno = errno;
  // fclose flushes, so it can fail too (a full disk shows up here).
  if (std::fclose(out) != 0 || !written) {
    throw dataError(path + ": cannot write: " + std::strerror(written ? errno : writeErrno));
  }
}

}  // namespace cnv
