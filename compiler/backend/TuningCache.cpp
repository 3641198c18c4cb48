#include "compiler/backend/TuningCache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cnv/Error.h"

namespace cnv::backend {
namespace {

constexpr int kFormatVersion = 1;
constexpr uintmax_t kMaxFileBytes = 16 << 20;  // some 50,000 entries

// FNV-1a: a digest that is the same in every build and on every machine (std::hash
// need not be).
uint64_t digest(const std::string& text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::string epilogueText(const ir::Op& op) {
  std::string text;
  for (const ir::EpilogueStep& step : op.epilogue) {
    if (!text.empty()) text += ",";
    text += ir::name(step.kind);
  }
  return text.empty() ? "none" : text;
}

}  // namespace

std::string machineKey(const Target& target) {
  return fmt::format("{} features:{:016x} v{} fma:{} l1d:{} l2:{}",
                     target.cpu.empty() ? "?" : target.cpu, digest(target.features),
                     target.vectorWidth, target.fmaPerCycle, target.caches.l1d, target.caches.l2);
}

std::string convKey(const ir::Op& op) {
  const ir::Value& x = *op.operands[0];
  const ir::Value& w = *op.operands[1];
  const ir::Value& y = *op.result;
  return fmt::format(
      "conv1d {}->{} C={} F={} K={} stride={} dilation={} groups={} pad=({},{}) {} bias={} "
      "epilogue={} width={}->{}",
      ir::name(x.layout), ir::name(y.layout), x.channels, y.channels, w.kernelWidth, op.stride,
      op.dilation, op.groups, op.padLeft.str(), op.padRight.str(), ir::name(op.paddingMode),
      op.hasBias ? 1 : 0, epilogueText(op), x.width.str(), y.width.str());
}

std::optional<std::string> TuningCache::defaultPath() {
  if (const char* given = std::getenv("CNV_TUNING_CACHE"); given && *given) {
    if (std::string(given) == "off") return std::nullopt;
    return std::string(given);
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/cnv/tuning.json";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/cnv/tuning.json";
  return std::nullopt;
}

TuningCache TuningCache::load(const std::string& path) {
  TuningCache cache;
  // Only a regular file of a sane size: a device, a pipe or a huge file given as the
  // cache must not hang or exhaust a compile.
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::is_regular_file(status)) return cache;
  const auto size = std::filesystem::file_size(path, error);
  if (error || size > kMaxFileBytes) return cache;
  std::ifstream in(path, std::ios::binary);
  if (!in) return cache;
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json json =
      nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return cache;
  const auto version = json.find("version");
  if (version == json.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kFormatVersion)
    return cache;
  const auto machines = json.find("machines");
  if (machines == json.end() || !machines->is_object()) return cache;
  for (const auto& [machine, convs] : machines->items()) {
    if (!convs.is_object()) continue;
    for (const auto& item : convs.items()) {
      const std::string& conv = item.key();
      const nlohmann::json& entry = item.value();
      if (!entry.is_object()) continue;
      auto text = [&](const char* key) {
        auto it = entry.find(key);
        return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      auto number = [&](const char* key) {
        auto it = entry.find(key);
        return it != entry.end() && it->is_number() ? it->get<double>() : -1.0;
      };
      TunedChoice choice{text("schedule"), number("seconds"), text("model_pick"),
                         number("model_pick_seconds"), text("dims")};
      if (choice.schedule.find(':') == std::string::npos || !(choice.seconds > 0)) continue;
      cache.entries_[machine][conv] = choice;
    }
  }
  return cache;
}

void TuningCache::save(const std::string& path) const {
  nlohmann::json machines = nlohmann::json::object();
  for (const auto& [machine, convs] : entries_)
    for (const auto& [conv, choice] : convs)
      machines[machine][conv] = {{"schedule", choice.schedule},
                                 {"seconds", choice.seconds},
                                 {"model_pick", choice.modelPick},
                                 {"model_pick_seconds", choice.modelPickSeconds},
                                 {"dims", choice.dims}};
  const nlohmann::json json = {{"version", kFormatVersion}, {"machines", machines}};
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), error);
  auto fail = [&] { return dataError(fmt::format("{}: cannot write the tuning cache", path)); };
  // A temporary of this writer's own, created exclusively (mkstemp), in the same
  // directory so that the rename is atomic.
  std::string temporary = path + ".XXXXXX";
  const int fd = mkstemp(temporary.data());
  if (fd < 0) throw fail();
  const std::string text = json.dump(2) + "\n";
  bool written = true;
  for (size_t done = 0; done < text.size() && written;) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    written = n > 0;
    if (written) done += static_cast<size_t>(n);
  }
  written = close(fd) == 0 && written;
  if (written) fs::rename(temporary, target, error);
  if (!written || error) {
    fs::remove(temporary, error);
    throw fail();
  }
}

void TuningCache::update(const std::string& path, const std::function<void(TuningCache&)>& change) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), error);
  // Writers take turns (an advisory lock beside the file), so that one does not lose
  // the entries another recorded between its read and its rename.
  const std::string lockPath = path + ".lock";
  const int lock = open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0) throw dataError(fmt::format("{}: cannot lock the tuning cache", path));
  struct Unlock {
    int fd;
    ~Unlock() { close(fd); }  // closing releases the lock
  } unlock{lock};
  if (flock(lock, LOCK_EX) != 0)
    throw dataError(fmt::format("{}: cannot lock the tuning cache", path));
  TuningCache cache = load(path);
  change(cache);
  cache.save(path);
}

const TunedChoice* TuningCache::find(const std::string& machine, const std::string& conv) const {
  auto m = entries_.find(machine);
  if (m == entries_.end()) return nullptr;
  auto c = m->second.find(conv);
  return c == m->second.end() ? nullptr : &c->second;
}

void TuningCache::record(const std::string& machine, const std::string& conv,
                         const TunedChoice& choice) {
  entries_[machine][conv] = choice;
}

size_t TuningCache::size() const {
  size_t count = 0;
  for (const auto& [machine, convs] : entries_) count += convs.size();
  return count;
}

}  // namespace cnv::backend
