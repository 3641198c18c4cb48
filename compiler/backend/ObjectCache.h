// The compile cache: a model's kernels as object code on disk, so that a model compiled
// before loads without emitting IR or running LLVM's optimizer and code generator.
//
// One file per compiled model, named by its key: a SHA-256 of what decides the code —
// the source text, the model's IR after the passes, the options, every kernel's
// strategy and schedule, the target CPU, its features and the machine description the
// schedules came from, and the versions of cnv (with the build of its code generator)
// and LLVM. A file is trusted only when its header names that key and every object's
// size and SHA-256 match; anything else — truncated, corrupt, written for another key —
// is ignored, compiled anew and replaced. Writes go to a temporary file renamed into
// place, so a reader never sees half an entry, concurrent writers each leave a whole
// one, and a process killed mid-write leaves only a stray temporary behind.
#pragma once

#include <llvm/ExecutionEngine/ObjectCache.h>
#include <llvm/Support/MemoryBuffer.h>

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cnv::backend {

class ObjectCache : public llvm::ObjectCache {
 public:
  // $CNV_CACHE_DIR, else $XDG_CACHE_HOME/cnv, else $HOME/.cache/cnv; nullopt when
  // CNV_CACHE=off or none is set.
  static std::optional<std::string> defaultDirectory();
  explicit ObjectCache(std::string directory);

  // The key of `description` (everything that decides the code) for this build.
  static std::string key(const std::string& description);
  // SHA-256 in hex.
  static std::string digest(const std::string& bytes);

  struct Entry {
    std::vector<std::string> objects;  // object files, each defining some symbols
    std::vector<std::string> symbols;  // per kernel, the function it calls
  };
  std::optional<Entry> load(const std::string& key) const;
  // Never fails the compile: an entry that cannot be written is skipped.
  void store(const std::string& key, const Entry& entry) const;

  // The JIT's compile layer hands each module's object here; takeCompiled returns it
  // by module identifier.
  void notifyObjectCompiled(const llvm::Module* module, llvm::MemoryBufferRef object) override;
  std::unique_ptr<llvm::MemoryBuffer> getObject(const llvm::Module*) override { return nullptr; }
  std::optional<std::string> takeCompiled(const std::string& module);

 private:
  std::string pathOf(const std::string& key) const;
  std::string directory_;
  std::mutex compiledMutex_;
  std::map<std::string, std::string> compiled_;
};

}  // namespace cnv::backend
