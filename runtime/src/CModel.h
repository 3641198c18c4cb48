// The C API's handle (cnv/cnv_runtime.h), and the guard every C function runs its body
// in: no exception crosses the C interface.
#pragma once

#include <memory>
#include <new>
#include <string>
#include <vector>

#include "Runner.h"
#include "cnv/cnv_runtime.h"

struct cnv_model {
  // Declared first, destroyed last: what keeps the runner's code alive (the JIT's
  // model), if anything does.
  std::shared_ptr<void> owner;
  std::shared_ptr<cnv::rt::Runner> runner;
  // dims[role][index]: the C strings of cnv_tensor_info::dims.
  std::vector<std::vector<std::vector<const char*>>> dims;

  cnv_model(std::shared_ptr<void> owner, std::shared_ptr<cnv::rt::Runner> runner);
};

namespace cnv::c {

void setLastError(const std::string& message);
const char* lastErrorText();

template <typename F>
cnv_status guarded(F&& body) {
  try {
    body();
    return CNV_OK;
  } catch (const cnv::Error& e) {
    std::string message = e.what();
    if (!e.rendered() && e.kind() != cnv::Error::Kind::Internal) message = "error: " + message;
    if (!message.empty() && message.back() != '\n') message += '\n';
    setLastError(message);
    return e.kind() == cnv::Error::Kind::Usage ? CNV_USAGE_ERROR : CNV_ERROR;
  } catch (const std::bad_alloc&) {
    setLastError("error: out of memory\n");
  } catch (const std::exception& e) {
    setLastError(std::string("internal error: ") + e.what() + "\n");
  } catch (...) {
    setLastError("internal error: an unknown exception\n");
  }
  return CNV_ERROR;
}

}  // namespace cnv::c
