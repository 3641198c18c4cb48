// Reading a data file front to back, for the .npy and .safetensors readers.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "cnv/Error.h"

namespace cnv {

// An open file read front to back. Readers take only as many bytes as the header promises,
// so a wrong, huge or endless file (/dev/zero) fails fast instead of filling memory.
class InputFile {
 public:
  explicit InputFile(const std::string& path)
      : path_(path), file_(std::fopen(path.c_str(), "rb"), &std::fclose) {
    if (!file_) throw dataError(path + ": cannot open: " + std::strerror(errno));
  }

  // Appends up to `count` more bytes to `bytes`; fewer only at the end of the file.
  void readInto(std::string& bytes, uint64_t count) {
    constexpr uint64_t kChunk = uint64_t{1} << 20;
    while (count > 0) {
      const size_t want = static_cast<size_t>(std::min(count, kChunk));
      const size_t old = bytes.size();
      bytes.resize(old + want);
      const size_t got = std::fread(bytes.data() + old, 1, want, file_.get());
      bytes.resize(old + got);
      if (got < want) {
        if (std::ferror(file_.get()))
          throw dataError(path_ + ": cannot read: " + std::strerror(errno));
        return;
      }
      count -= got;
    }
  }

  // How many bytes follow the current position: exact for regular files; pipes and devices
  // may never end, so for them at most 1 MiB is counted.
  uint64_t bytesLeftAtLeast() {
    struct stat info {};
    const long position = std::ftell(file_.get());
    if (fstat(fileno(file_.get()), &info) == 0 && S_ISREG(info.st_mode) && position >= 0) {
      const auto size = static_cast<uint64_t>(info.st_size);
      return size > static_cast<uint64_t>(position) ? size - static_cast<uint64_t>(position) : 0;
    }
    std::string rest;
    readInto(rest, uint64_t{1} << 20);
    return rest.size();
  }

 private:
  std::string path_;
  std::unique_ptr<FILE, int (*)(FILE*)> file_;
};

}  // namespace cnv
