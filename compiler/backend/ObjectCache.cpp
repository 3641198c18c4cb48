#include "compiler/backend/ObjectCache.h"

#include <fmt/format.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SHA256.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/backend/LlvmTarget.h"

namespace cnv::backend {
namespace {

constexpr const char* kMagic = "cnv compile cache entry 2";
// An entry larger than this is not read (a model's kernels are tens of KiB each).
constexpr uintmax_t kMaxEntryBytes = 256u << 20;
constexpr size_t kMaxCount = 1u << 20;

bool writeAll(int fd, llvm::StringRef bytes) {
  const char* data = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written <= 0) return false;
    data += written;
    left -= static_cast<size_t>(written);
  }
  return true;
}

}  // namespace

std::string ObjectCache::digest(const std::string& bytes) {
  const auto hash = llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  std::string hex;
  hex.reserve(64);
  static const char* digits = "0123456789abcdef";
  for (uint8_t byte : hash) {
    hex += digits[byte >> 4];
    hex += digits[byte & 15];
  }
  return hex;
}

std::optional<std::string> ObjectCache::defaultDirectory() {
  if (const char* off = std::getenv("CNV_CACHE"); off && std::string(off) == "off")
    return std::nullopt;
  if (const char* given = std::getenv("CNV_CACHE_DIR"); given && *given) return std::string(given);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/cnv";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/cnv";
  return std::nullopt;
}

ObjectCache::ObjectCache(std::string directory) : directory_(std::move(directory)) {}

std::string ObjectCache::key(const std::string& description) {
  // The code generator's build too: its optimization pipeline is compiled into cnv, so
  // a rebuilt cnv may generate other code for the same kernels.
  return digest(fmt::format("{}\ncnv {} built {}; LLVM {}\n{}", kMagic, CNV_VERSION,
                            codeGeneratorBuild(), LLVM_VERSION_STRING, description));
}

std::string ObjectCache::pathOf(const std::string& key) const {
  return directory_ + "/model-" + key + ".cnvobj";
}

std::optional<ObjectCache::Entry> ObjectCache::load(const std::string& key) const {
  const std::string path = pathOf(key);
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::is_regular_file(status)) return std::nullopt;
  const auto size = std::filesystem::file_size(path, error);
  if (error || size > kMaxEntryBytes) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) return std::nullopt;

  // "<magic>\nkey K\nobjects N\n" N × "object SIZE SHA\n", "symbols M\n" M × "symbol S\n",
  // "end\n", then the objects' bytes back to back.
  const size_t end = text.find("\nend\n");
  if (end == std::string::npos) return std::nullopt;
  std::istringstream header(text.substr(0, end));
  std::string line, word, value;
  if (!std::getline(header, line) || line != kMagic) return std::nullopt;
  size_t objects = 0, symbols = 0;
  if (!(header >> word >> value) || word != "key" || value != key) return std::nullopt;
  if (!(header >> word >> objects) || word != "objects" || objects > kMaxCount) return std::nullopt;
  std::vector<std::pair<uint64_t, std::string>> parts(objects);
  for (auto& [bytes, sha] : parts)
    if (!(header >> word >> bytes >> sha) || word != "object") return std::nullopt;
  if (!(header >> word >> symbols) || word != "symbols" || symbols > kMaxCount) return std::nullopt;
  Entry entry;
  entry.symbols.resize(symbols);
  for (std::string& symbol : entry.symbols)
    if (!(header >> word >> symbol) || word != "symbol") return std::nullopt;
  if (header >> word) return std::nullopt;  // nothing else in the header
  size_t at = end + 5;
  for (const auto& [bytes, sha] : parts) {
    if (bytes > text.size() - at) return std::nullopt;
    std::string object = text.substr(at, bytes);
    at += bytes;
    if (digest(object) != sha) return std::nullopt;
    entry.objects.push_back(std::move(object));
  }
  if (at != text.size()) return std::nullopt;
  return entry;
}

void ObjectCache::store(const std::string& key, const Entry& entry) const {
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error) return;
  std::string header = fmt::format("{}\nkey {}\nobjects {}\n", kMagic, key, entry.objects.size());
  for (const std::string& object : entry.objects)
    header += fmt::format("object {} {}\n", object.size(), digest(object));
  header += fmt::format("symbols {}\n", entry.symbols.size());
  for (const std::string& symbol : entry.symbols) header += fmt::format("symbol {}\n", symbol);
  header += "end\n";
  std::string temporary = directory_ + "/.model-" + key + ".XXXXXX";
  const int fd = mkstemp(temporary.data());
  if (fd < 0) return;
  bool ok = writeAll(fd, header);
  for (const std::string& object : entry.objects) ok = ok && writeAll(fd, object);
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(temporary.c_str(), pathOf(key).c_str()) != 0)
    std::remove(temporary.c_str());
}

void ObjectCache::notifyObjectCompiled(const llvm::Module* module, llvm::MemoryBufferRef object) {
  std::lock_guard<std::mutex> lock(compiledMutex_);
  compiled_[module->getModuleIdentifier()] = object.getBuffer().str();
}

std::optional<std::string> ObjectCache::takeCompiled(const std::string& module) {
  std::lock_guard<std::mutex> lock(compiledMutex_);
  auto it = compiled_.find(module);
  if (it == compiled_.end()) return std::nullopt;
  std::string object = std::move(it->second);
  compiled_.erase(it);
  return object;
}

}  // namespace cnv::backend
