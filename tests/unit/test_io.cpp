// Tensor helpers and the .npy / .safetensors readers and writers (SPEC §3). The fixtures in
// tests/data/io come from real NumPy (and struct + json for safetensors); see
// tests/data/io/make_fixtures.py.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <thread>

#include "cnv/Error.h"
#include "cnv/Io.h"
#include "cnv/Tensor.h"

namespace {

using Catch::Matchers::Contains;
using cnv::Tensor;

std::string fixture(const std::string& name) {
  return std::string(CNV_SOURCE_DIR) + "/tests/data/io/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A fresh directory per test, removed afterwards, so tests can run in parallel.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("cnv_test_io_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out);
    return file(name);
  }

 private:
  std::filesystem::path path_;
};

// Serves `bytes` through a named pipe while `read` reads it, to exercise the readers' path for
// files whose size is unknown.
template <typename Read>
void readThroughPipe(const TempDir& dir, const std::string& bytes, Read&& read) {
  const std::string path = dir.file("pipe");
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  // A reader that stops early must fail the test, not kill it with SIGPIPE.
  auto* previous = std::signal(SIGPIPE, SIG_IGN);
  std::thread writer([&] {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  });
  try {
    read(path);
  } catch (...) {
    writer.join();
    std::signal(SIGPIPE, previous);
    std::filesystem::remove(path);
    throw;
  }
  writer.join();
  std::signal(SIGPIPE, previous);
  std::filesystem::remove(path);
}

// Runs `action`, which must throw a Data cnv::Error; returns its message.
template <typename Action>
std::string dataErrorOf(Action&& action) {
  try {
    action();
  } catch (const cnv::Error& e) {
    CHECK(e.kind() == cnv::Error::Kind::Data);
    return e.what();
  }
  FAIL("no cnv::Error was thrown");
  return "";
}

// The values make_fixtures.py writes: i / 8 - 1 (+ offset), exact in float32.
void checkCounting(const Tensor& tensor, const std::vector<int64_t>& shape, float offset = 0) {
  REQUIRE(tensor.shape() == shape);
  REQUIRE(tensor.size() == cnv::elementCount(shape));
  for (int64_t i = 0; i < tensor.size(); ++i) {
    INFO("element " << i);
    CHECK(tensor.data()[i] == static_cast<float>(i) / 8 - 1 + offset);
  }
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.size() == b.size() &&
         (a.size() == 0 ||
          std::memcmp(a.data(), b.data(), static_cast<size_t>(a.size()) * sizeof(float)) == 0);
}

bool sameBits(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, tensor] : a) {
    auto it = b.find(name);
    if (it == b.end() || !sameBits(tensor, it->second)) return false;
  }
  return true;
}

std::string littleEndian(uint64_t value, size_t width) {
  std::string bytes;
  for (size_t i = 0; i < width; ++i) bytes += static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// An .npy file with the given header text (unpadded) and data, for malformed-header cases.
std::string npyWithHeader(const std::string& header, int majorVersion = 1,
                          const std::string& data = std::string(24, '\0')) {
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(majorVersion);
  bytes += '\0';
  bytes += littleEndian(header.size(), majorVersion == 1 ? 2 : 4);
  return bytes + header + data;
}

std::string safetensorsWith(const std::string& header, const std::string& data) {
  return littleEndian(header.size(), 8) + header + data;
}

Tensor counting(std::vector<int64_t> shape) {
  Tensor tensor(std::move(shape));
  for (int64_t i = 0; i < tensor.size(); ++i) tensor.data()[i] = static_cast<float>(i) / 8 - 1;
  return tensor;
}

const std::vector<std::string> kNpyFixtures = {
    "v1_2x3x4.npy", "v2_5.npy",       "v3_2x2.npy",     "empty_0x5x2.npy", "scalar.npy",
    "save_3x4.npy", "f8.npy",         "big_endian.npy", "int32.npy",       "fortran.npy",
    "object.npy",   "structured.npy", "trailing.npy",   "truncated.npy"};
const std::vector<std::string> kSafetensorsFixtures = {
    "two_tensors.safetensors", "with_empty.safetensors", "overlap.safetensors",
    "hole.safetensors",        "f16.safetensors",        "trailing.safetensors"};

}  // namespace

// --- Tensor ------------------------------------------------------------------------------

TEST_CASE("tensor: elementCount and shapeString", "[io][tensor]") {
  CHECK(cnv::elementCount({}) == 1);
  CHECK(cnv::elementCount({2, 3, 4}) == 24);
  CHECK(cnv::elementCount({0, 5, 2}) == 0);
  CHECK(cnv::elementCount({int64_t{1} << 19, int64_t{1} << 19}) == int64_t{1} << 38);  // 1 TiB

  CHECK_THAT(dataErrorOf([] { cnv::elementCount({2, -1}); }), Contains("negative"));
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  CHECK_THAT(dataErrorOf([] { cnv::elementCount({kHuge, 2}); }), Contains("too large"));
  CHECK_THAT(dataErrorOf([] { cnv::elementCount({kHuge / 2}); }), Contains("too large"));
  CHECK_THAT(dataErrorOf([] {
               cnv::elementCount({int64_t{1} << 20, int64_t{1} << 19});
             }),
             Contains("too large"));
  // Empty, but its strides would overflow.
  CHECK_THAT(dataErrorOf([] {
               cnv::elementCount({0, int64_t{1} << 32, int64_t{1} << 32});
             }),
             Contains("too large"));
  CHECK(cnv::elementCount({0, int64_t{1} << 40}) == 0);

  CHECK(cnv::shapeString({}) == "[]");
  CHECK(cnv::shapeString({7}) == "[7]");
  CHECK(cnv::shapeString({2, 3, 4}) == "[2, 3, 4]");
}

TEST_CASE("tensor: constructors check the element count", "[io][tensor]") {
  const Tensor zeros({2, 3});
  CHECK(zeros.size() == 6);
  CHECK(std::all_of(zeros.data(), zeros.data() + 6, [](float x) { return x == 0; }));
  CHECK(Tensor({0, 4}).size() == 0);
  CHECK(Tensor(std::vector<int64_t>{}).size() == 1);

  const Tensor given({2, 2}, {1, 2, 3, 4});
  CHECK(given.data()[3] == 4);
  CHECK_THAT(dataErrorOf([] {
               Tensor({2, 3}, std::vector<float>(5));
             }),
             Contains("needs 6") && Contains("[2, 3]"));
  CHECK_THAT(dataErrorOf([] { Tensor(std::vector<int64_t>{-3}); }), Contains("negative"));
}

// --- .npy --------------------------------------------------------------------------------

TEST_CASE("npy: reads the files NumPy writes", "[io][npy]") {
  checkCounting(cnv::readNpy(fixture("v1_2x3x4.npy")), {2, 3, 4});
  checkCounting(cnv::readNpy(fixture("v2_5.npy")), {5});
  checkCounting(cnv::readNpy(fixture("v3_2x2.npy")), {2, 2});
  checkCounting(cnv::readNpy(fixture("save_3x4.npy")), {3, 4});
  checkCounting(cnv::readNpy(fixture("empty_0x5x2.npy")), {0, 5, 2});
  const Tensor scalar = cnv::readNpy(fixture("scalar.npy"));
  CHECK(scalar.shape().empty());
  REQUIRE(scalar.size() == 1);
  CHECK(scalar.data()[0] == 2.5f);
}

TEST_CASE("npy: formatNpy matches NumPy byte for byte", "[io][npy]") {
  for (const char* name : {"v1_2x3x4.npy", "save_3x4.npy", "empty_0x5x2.npy", "scalar.npy"}) {
    INFO(name);
    const std::string bytes = slurp(fixture(name));
    CHECK(cnv::formatNpy(cnv::parseNpy(bytes, name)) == bytes);
  }
}

TEST_CASE("npy: writeNpy and readNpy round-trip every float", "[io][npy]") {
  TempDir dir;
  std::mt19937 random(1234);
  std::uniform_int_distribution<uint32_t> anyBits;
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {}, {1}, {7}, {0}, {3, 0}, {2, 3, 4}, {1, 1, 1, 1, 5}, {100000}}) {
    INFO("shape " << cnv::shapeString(shape));
    Tensor tensor(shape);
    for (int64_t i = 0; i < tensor.size(); ++i) {
      const uint32_t bits = anyBits(random);  // NaNs, infinities and denormals included
      std::memcpy(&tensor.data()[i], &bits, sizeof bits);
    }
    const std::string path = dir.file("x.npy");
    cnv::writeNpy(path, tensor);
    const std::string bytes = slurp(path);
    CHECK(bytes.substr(6, 2) == std::string("\x01\x00", 2));
    const size_t dataBegin = bytes.size() - static_cast<size_t>(tensor.size()) * 4;
    CHECK(dataBegin % 64 == 0);
    CHECK(bytes[dataBegin - 1] == '\n');
    CHECK(sameBits(cnv::readNpy(path), tensor));
  }
}

TEST_CASE("npy: a header too long for version 1.0 is written as 2.0", "[io][npy]") {
  const Tensor tensor(std::vector<int64_t>(25000, 1), {42.0f});
  const std::string bytes = cnv::formatNpy(tensor);
  CHECK(bytes[6] == 2);
  CHECK((bytes.size() - 4) % 64 == 0);
  const Tensor back = cnv::parseNpy(bytes, "long.npy");
  CHECK(sameBits(back, tensor));
}

TEST_CASE("npy: rejects other dtypes, orders and sizes", "[io][npy]") {
  auto errorOf = [](const std::string& name) {
    return dataErrorOf([&] { cnv::readNpy(fixture(name)); });
  };
  CHECK_THAT(errorOf("f8.npy"), Contains("f8.npy: ") && Contains("dtype '<f8'"));
  CHECK_THAT(errorOf("big_endian.npy"), Contains("dtype '>f4'"));
  CHECK_THAT(errorOf("int32.npy"), Contains("dtype '<i4'"));
  CHECK_THAT(errorOf("object.npy"), Contains("dtype '|O'"));
  CHECK_THAT(errorOf("structured.npy"), Contains("structured dtypes"));
  CHECK_THAT(errorOf("fortran.npy"), Contains("fortran_order True"));
  CHECK_THAT(errorOf("trailing.npy"), Contains("4 trailing bytes"));
  CHECK_THAT(errorOf("truncated.npy"), Contains("truncated") && Contains("needs 96 bytes"));
}

TEST_CASE("npy: header dicts NumPy or Python would write are accepted", "[io][npy]") {
  const std::vector<std::string> accepted = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
      "{\"shape\": (2, 3), \"descr\": \"<f4\", \"fortran_order\": False}",
      "  {\n'fortran_order':False,\t'shape':( 2 ,3 , ),'descr':'<f4'}\n   \n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",  // Python 2
  };
  for (const std::string& header : accepted) {
    INFO(header);
    CHECK(cnv::parseNpy(npyWithHeader(header), "ok.npy").shape() == std::vector<int64_t>{2, 3});
  }
  const Tensor scalar =
      cnv::parseNpy(npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 3,
                                  std::string(4, '\0')),
                    "ok.npy");
  CHECK(scalar.shape().empty());
}

TEST_CASE("npy: malformed files are rejected with a clear message", "[io][npy]") {
  const std::string data(24, '\0');
  auto header = [](const std::string& shape, const std::string& rest = "'fortran_order': False") {
    return "{'descr': '<f4', " + rest + ", 'shape': " + shape + "}";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"hello world, not numpy", "x.npy: not an .npy file (bad magic)"},
      {std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '), "version 4.0"},
      {std::string("\x93NUMPY\x01\x01\x10\x00", 10) + std::string(16, ' '), "version 1.1"},
      {std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), "runs past the end"},
      {npyWithHeader("{'descr': '<f4', 'fortran_order': False}"), "no 'shape' key"},
      {npyWithHeader("{}"), "no 'descr' key"},
      {npyWithHeader("{,}"), "expected a quoted string"},
      {npyWithHeader(header("(2, 3)", "'fortran_order': False, 'extra': 1")),
       "unexpected key 'extra'"},
      {npyWithHeader(header("(2, 3)", "'fortran_order': False, 'descr': '<f4'")),
       "duplicate key 'descr'"},
      {npyWithHeader(header("(6)")), "not a tuple"},
      {npyWithHeader(header("[2, 3]")), "must be a tuple"},
      {npyWithHeader(header("(-2, -3)")), "negative"},
      {npyWithHeader(header("(2.0, 3)")), "non-negative integers"},
      {npyWithHeader(header("(2, 3")), "expected ','"},
      {npyWithHeader(header("(06,)")), "leading zeros"},
      {npyWithHeader(header("(99999999999999999999,)")), "too large"},
      {npyWithHeader(header("(4294967296, 4294967296)")), "too large"},
      {npyWithHeader(header("(2L, 3L)"), 3), "non-negative integers"},  // no Python 2 in v3
      {npyWithHeader(header("(2, 3)", "'fortran_order': 'False'")), "True or False"},
      {npyWithHeader(header("(2, 3)", "'fortran_order': Falsey")), "True or False"},
      {npyWithHeader(header("(2, 3)", "'fortran_order': True")), "fortran_order True"},
      {npyWithHeader(header("(2, 3)") + " # comment"), "unexpected text after the header"},
      {npyWithHeader("{'descr': '<\\x66\\x34', 'fortran_order': False, 'shape': (2, 3)}"),
       "escape sequences"},
      {npyWithHeader("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}"),
       "column 18: expected ',' or '}'"},
      {npyWithHeader("{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}"), "expected ':'"},
      {npyWithHeader("{'descr': '<f4"), "unterminated string"},
      {npyWithHeader("{'descr': '\x1b[31m', 'fortran_order': False, 'shape': (6,)}"),
       "dtype '\\x1b[31m'"},  // control characters are escaped, not printed
      {npyWithHeader(header("(2, 3)"), 1, std::string(20, '\0')), "needs 24 bytes"},
      {npyWithHeader(header("(2, 3)"), 1, std::string(25, '\0')), "1 trailing bytes"},
  };
  for (const auto& testCase : cases) {
    const std::string &bytes = testCase.first, &expected = testCase.second;
    INFO("expecting " << expected);
    CHECK_THAT(dataErrorOf([&] { cnv::parseNpy(bytes, "x.npy"); }),
               Contains("x.npy: ") && Contains(expected));
  }
}

TEST_CASE("npy: every truncated prefix of a valid file is rejected", "[io][npy]") {
  TempDir dir;
  for (const char* name : {"v1_2x3x4.npy", "v3_2x2.npy", "empty_0x5x2.npy"}) {
    const std::string bytes = slurp(fixture(name));
    for (size_t length = 0; length < bytes.size(); ++length) {
      INFO(name << " cut to " << length << " bytes");
      const std::string path = dir.write("cut.npy", bytes.substr(0, length));
      const std::string parsed = dataErrorOf([&] { cnv::parseNpy(bytes.substr(0, length), path); });
      CHECK(dataErrorOf([&] { cnv::readNpy(path); }) == parsed);
    }
  }
}

TEST_CASE("npy: readNpy and parseNpy agree on every fixture", "[io][npy]") {
  for (const std::string& name : kNpyFixtures) {
    INFO(name);
    const std::string path = fixture(name);
    std::string readError, parseError;
    Tensor read, parsed;
    try {
      read = cnv::readNpy(path);
    } catch (const cnv::Error& e) {
      readError = e.what();
    }
    try {
      parsed = cnv::parseNpy(slurp(path), path);
    } catch (const cnv::Error& e) {
      parseError = e.what();
    }
    CHECK(readError == parseError);
    CHECK(sameBits(read, parsed));
  }
}

TEST_CASE("npy: random corruption is rejected or read, never crashes", "[io][npy]") {
  const std::string valid = slurp(fixture("v1_2x3x4.npy"));
  const uint32_t seed = 20240601;
  INFO("seed " << seed);
  std::mt19937 random(seed);
  for (int round = 0; round < 5000; ++round) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = random() % bytes.size();
      switch (random() % 3) {
        case 0:
          bytes[at] = static_cast<char>(random());
          break;
        case 1:
          bytes.erase(at, 1 + random() % 8);
          break;
        default:
          bytes.insert(at, 1 + random() % 8, static_cast<char>(random()));
          break;
      }
      if (bytes.empty()) bytes = "x";
    }
    try {
      const Tensor tensor = cnv::parseNpy(bytes, "fuzz.npy");
      CHECK(tensor.size() == cnv::elementCount(tensor.shape()));
    } catch (const cnv::Error& e) {
      CHECK(e.kind() == cnv::Error::Kind::Data);
    }
  }
}

TEST_CASE("npy: file errors name the path", "[io][npy]") {
  TempDir dir;
  const std::string missing = dir.file("missing.npy");
  CHECK_THAT(dataErrorOf([&] { cnv::readNpy(missing); }),
             Contains(missing + ": cannot open: No such file or directory"));
  CHECK_THAT(dataErrorOf([&] { cnv::readNpy(dir.file("")); }), Contains("Is a directory"));
  // Only the prefix is read, so an endless device fails at once.
  CHECK_THAT(dataErrorOf([] { cnv::readNpy("/dev/zero"); }), Contains("bad magic"));
  const std::string unwritable = dir.file("no/such/dir/x.npy");
  CHECK_THAT(dataErrorOf([&] { cnv::writeNpy(unwritable, Tensor({1})); }),
             Contains(unwritable + ": cannot write"));
}

TEST_CASE("npy: readNpy reads pipes", "[io][npy]") {
  TempDir dir;
  const std::string valid = slurp(fixture("v1_2x3x4.npy"));
  readThroughPipe(dir, valid, [](const std::string& path) {
    checkCounting(cnv::readNpy(path), {2, 3, 4});
  });
  readThroughPipe(dir, valid + "abc", [](const std::string& path) {
    CHECK_THAT(dataErrorOf([&] { cnv::readNpy(path); }), Contains("3 trailing bytes"));
  });
  readThroughPipe(dir, valid.substr(0, 200), [](const std::string& path) {
    CHECK_THAT(dataErrorOf([&] { cnv::readNpy(path); }), Contains("the file has 72"));
  });
}

TEST_CASE("npy: formatNpy refuses a default-constructed tensor", "[io][npy]") {
  try {
    cnv::formatNpy(Tensor());
    FAIL("no error");
  } catch (const cnv::Error& e) {
    CHECK(e.kind() == cnv::Error::Kind::Usage);
  }
}

// --- .safetensors ------------------------------------------------------------------------

TEST_CASE("safetensors: reads valid files", "[io][safetensors]") {
  const auto tensors = cnv::readSafetensors(fixture("two_tensors.safetensors"));
  REQUIRE(tensors.size() == 2);
  checkCounting(tensors.at("conv.weight"), {4, 2, 3});
  checkCounting(tensors.at("conv.bias"), {4}, 10);

  const auto withEmpty = cnv::readSafetensors(fixture("with_empty.safetensors"));
  REQUIRE(withEmpty.size() == 2);
  CHECK(withEmpty.at("a").shape() == std::vector<int64_t>{0, 3});
  CHECK(withEmpty.at("b").shape().empty());
  CHECK(withEmpty.at("b").data()[0] == 7.0f);
}

TEST_CASE("safetensors: headers other writers produce are accepted", "[io][safetensors]") {
  const std::string data = std::string(4, '\0') + std::string("\0\0\x80\x3f", 4);  // 0, 1
  const std::vector<std::string> accepted = {
      "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
      "\"a\":{\"data_offsets\":[0,4],\"shape\":[],\"dtype\":\"F32\"}}",
      "{\n  \"__metadata__\": null,\n  \"a\": {\"dtype\": \"F32\", \"shape\": [], "
      "\"data_offsets\": [0, 4]},\n  \"b\": {\"dtype\": \"F32\", \"shape\": [1], "
      "\"data_offsets\": [4, 8]}\n}\n       ",
  };
  for (const std::string& header : accepted) {
    INFO(header);
    const auto tensors = cnv::parseSafetensors(safetensorsWith(header, data), "ok.safetensors");
    REQUIRE(tensors.size() == 2);
    CHECK(tensors.at("a").shape().empty());
    CHECK(tensors.at("a").data()[0] == 0.0f);
    CHECK(tensors.at("b").shape() == std::vector<int64_t>{1});
    CHECK(tensors.at("b").data()[0] == 1.0f);
  }
}

TEST_CASE("safetensors: formatSafetensors round-trips", "[io][safetensors]") {
  std::map<std::string, Tensor> tensors;
  tensors.emplace("w", counting({3, 2, 4}));
  tensors.emplace("b", counting({3}));
  tensors.emplace("empty", counting({0, 7}));
  tensors.emplace("scalar", counting({}));
  tensors.emplace("naïve \"quoted\"\n", counting({2}));
  const std::string bytes = cnv::formatSafetensors(tensors);
  uint64_t headerSize = 0;
  std::memcpy(&headerSize, bytes.data(), 8);
  CHECK(headerSize % 8 == 0);
  CHECK(bytes.size() == 8 + headerSize + 4 * (24 + 3 + 1 + 2));
  CHECK(sameBits(cnv::parseSafetensors(bytes, "x.safetensors"), tensors));

  const auto fromFile = cnv::readSafetensors(fixture("two_tensors.safetensors"));
  CHECK(sameBits(cnv::parseSafetensors(cnv::formatSafetensors(fromFile), "y"), fromFile));
  CHECK(cnv::parseSafetensors(cnv::formatSafetensors({}), "z").empty());
}

TEST_CASE("safetensors: rejects overlaps, holes and other dtypes", "[io][safetensors]") {
  auto errorOf = [](const std::string& name) {
    return dataErrorOf([&] { cnv::readSafetensors(fixture(name)); });
  };
  CHECK_THAT(errorOf("overlap.safetensors"),
             Contains("overlap.safetensors: ") &&
                 Contains("\"a\" [0, 8) and \"b\" [4, 12) overlap") &&
                 Contains("tensor data may not overlap or leave holes"));
  CHECK_THAT(errorOf("hole.safetensors"),
             Contains("hole") && Contains("[8, 12)") && Contains("may not overlap or leave holes"));
  CHECK_THAT(errorOf("f16.safetensors"), Contains("dtype \"F16\""));
  CHECK_THAT(errorOf("trailing.safetensors"), Contains("hole") && Contains("4 trailing bytes"));
}

TEST_CASE("safetensors: malformed headers are rejected with a clear message", "[io][safetensors]") {
  auto entry = [](const std::string& fields) { return "{\"t\": {" + fields + "}}"; };
  const std::string f32 = "\"dtype\": \"F32\", ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"short", "truncated .safetensors file (no header size)"},
      {littleEndian(100, 8) + "{}", "header size 100 runs past the end"},
      {littleEndian(uint64_t{1} << 62, 8) + "{}", "is larger than 100000000 bytes"},
      {safetensorsWith("", ""), "does not start with '{'"},
      {safetensorsWith("[]", ""), "does not start with '{'"},
      {safetensorsWith(" {}", ""), "does not start with '{'"},
      {safetensorsWith("{\"t\": ", ""), "invalid JSON"},
      {safetensorsWith("{\"t\": \"\xff\"}", ""), "invalid JSON"},
      {safetensorsWith("{} {}", ""), "invalid JSON"},
      {safetensorsWith("{\"t\": 5}", ""), "\"t\": its header entry is not a JSON object"},
      {safetensorsWith(entry("\"shape\": [1], \"data_offsets\": [0, 4]"), "xxxx"),
       "missing field \"dtype\""},
      {safetensorsWith(entry(f32 + "\"data_offsets\": [0, 4]"), "xxxx"), "missing field \"shape\""},
      {safetensorsWith(entry(f32 + "\"shape\": [1]"), "xxxx"), "missing field \"data_offsets\""},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1"), "xxxx"),
       "unknown field \"x\""},
      {safetensorsWith(entry("\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]"), "xxxx"),
       "dtype is not a string"},
      {safetensorsWith(entry("\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]"),
                       "xxxxxxxx"),
       "unsupported dtype \"F64\""},
      {safetensorsWith(entry(f32 + "\"shape\": 1, \"data_offsets\": [0, 4]"), "xxxx"),
       "shape is not an array"},
      {safetensorsWith(entry(f32 + "\"shape\": [-1], \"data_offsets\": [0, 4]"), "xxxx"),
       "non-negative integers"},
      {safetensorsWith(entry(f32 + "\"shape\": [1.0], \"data_offsets\": [0, 4]"), "xxxx"),
       "non-negative integers"},
      {safetensorsWith(entry(f32 + "\"shape\": [1e30], \"data_offsets\": [0, 4]"), "xxxx"),
       "non-negative integers"},
      {safetensorsWith(entry(f32 + "\"shape\": [18446744073709551615], \"data_offsets\": [0, 4]"),
                       "xxxx"),
       "non-negative integers"},
      {safetensorsWith(entry(f32 + "\"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]"),
                       "xxxx"),
       "too large"},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [4, 0]"), "xxxx"),
       "end before they begin"},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [0]"), "xxxx"),
       "must be two non-negative integers"},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [-4, 0]"), "xxxx"),
       "must be two non-negative integers"},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [0, 8]"), "xxxxxxxx"),
       "span 8 bytes but shape [1] needs 4"},
      {safetensorsWith(entry(f32 + "\"shape\": [2], \"data_offsets\": [0, 8]"), "xxxx"),
       "truncated .safetensors file: tensor \"t\" [0, 8) runs past the end"},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [4, 8]"), "xxxxxxxx"),
       "hole in the data section: bytes [0, 4)"},
      {safetensorsWith(entry(f32 + "\"shape\": [1], \"data_offsets\": [0, 4]"), "xxxxxx"),
       "2 trailing bytes belong to no tensor"},
      {safetensorsWith("{\"t\": {}, \"t\": {}}", ""), "duplicate key \"t\""},
      {safetensorsWith(entry(f32 + "\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]"),
                       "xxxx"),
       "duplicate key \"dtype\""},
      {safetensorsWith("{\"__metadata__\": {\"a\": 1}}", ""), "\"__metadata__\" must be"},
      {safetensorsWith("{\"__metadata__\": null, \"t\": 1}", ""), "\"t\": its header entry"},
      {safetensorsWith(
           "{\"__metadata__\": [" + std::string(100000, '[') + std::string(100000, ']') + "]}", ""),
       "\"__metadata__\" must be"},
  };
  for (const auto& testCase : cases) {
    const std::string &bytes = testCase.first, &expected = testCase.second;
    INFO("expecting " << expected);
    CHECK_THAT(dataErrorOf([&] { cnv::parseSafetensors(bytes, "x.safetensors"); }),
               Contains("x.safetensors: ") && Contains(expected));
  }
}

TEST_CASE("safetensors: every truncated prefix of a valid file is rejected", "[io][safetensors]") {
  TempDir dir;
  for (const char* name : {"two_tensors.safetensors", "with_empty.safetensors"}) {
    const std::string bytes = slurp(fixture(name));
    for (size_t length = 0; length < bytes.size(); ++length) {
      INFO(name << " cut to " << length << " bytes");
      const std::string path = dir.write("cut.safetensors", bytes.substr(0, length));
      const std::string parsed =
          dataErrorOf([&] { cnv::parseSafetensors(bytes.substr(0, length), path); });
      CHECK(dataErrorOf([&] { cnv::readSafetensors(path); }) == parsed);
    }
  }
}

TEST_CASE("safetensors: readSafetensors and parseSafetensors agree on every fixture",
          "[io][safetensors]") {
  for (const std::string& name : kSafetensorsFixtures) {
    INFO(name);
    const std::string path = fixture(name);
    std::string readError, parseError;
    std::map<std::string, Tensor> read, parsed;
    try {
      read = cnv::readSafetensors(path);
    } catch (const cnv::Error& e) {
      readError = e.what();
    }
    try {
      parsed = cnv::parseSafetensors(slurp(path), path);
    } catch (const cnv::Error& e) {
      parseError = e.what();
    }
    CHECK(readError == parseError);
    CHECK(sameBits(read, parsed));
  }
}

TEST_CASE("safetensors: random corruption is rejected or read, never crashes",
          "[io][safetensors]") {
  const std::string valid = slurp(fixture("two_tensors.safetensors"));
  const uint32_t seed = 20240602;
  INFO("seed " << seed);
  std::mt19937 random(seed);
  for (int round = 0; round < 5000; ++round) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = random() % bytes.size();
      switch (random() % 3) {
        case 0:
          bytes[at] = static_cast<char>(random());
          break;
        case 1:
          bytes.erase(at, 1 + random() % 8);
          break;
        default:
          bytes.insert(at, 1 + random() % 8, static_cast<char>(random()));
          break;
      }
      if (bytes.empty()) bytes = "x";
    }
    try {
      for (const auto& [name, tensor] : cnv::parseSafetensors(bytes, "fuzz.safetensors")) {
        CHECK(tensor.size() == cnv::elementCount(tensor.shape()));
      }
    } catch (const cnv::Error& e) {
      CHECK(e.kind() == cnv::Error::Kind::Data);
    }
  }
}

TEST_CASE("safetensors: file errors name the path", "[io][safetensors]") {
  TempDir dir;
  const std::string missing = dir.file("missing.safetensors");
  CHECK_THAT(dataErrorOf([&] { cnv::readSafetensors(missing); }),
             Contains(missing + ": cannot open: No such file or directory"));
  CHECK_THAT(dataErrorOf([] { cnv::readSafetensors("/dev/zero"); }),
             Contains("does not start with '{'"));
}

TEST_CASE("safetensors: readSafetensors reads pipes", "[io][safetensors]") {
  TempDir dir;
  const std::string valid = slurp(fixture("two_tensors.safetensors"));
  readThroughPipe(dir, valid,
                  [](const std::string& path) { CHECK(cnv::readSafetensors(path).size() == 2); });
  readThroughPipe(dir, valid + "abcd", [](const std::string& path) {
    CHECK_THAT(dataErrorOf([&] { cnv::readSafetensors(path); }), Contains("4 trailing bytes"));
  });
}

TEST_CASE("safetensors: formatSafetensors refuses names it cannot write", "[io][safetensors]") {
  auto kindOf = [](const std::map<std::string, Tensor>& tensors) {
    try {
      cnv::formatSafetensors(tensors);
    } catch (const cnv::Error& e) {
      return e.kind();
    }
    return cnv::Error::Kind::Internal;  // no error at all
  };
  std::map<std::string, Tensor> metadata;
  metadata.emplace("__metadata__", Tensor({1}));
  CHECK(kindOf(metadata) == cnv::Error::Kind::Usage);
  std::map<std::string, Tensor> notUtf8;
  notUtf8.emplace("bad\xff", Tensor({1}));
  CHECK(kindOf(notUtf8) == cnv::Error::Kind::Usage);
  std::map<std::string, Tensor> notUtf8AndWrong;
  notUtf8AndWrong.emplace("bad\xff", Tensor());
  CHECK(kindOf(notUtf8AndWrong) == cnv::Error::Kind::Usage);
}
