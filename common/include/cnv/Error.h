// The one exception type the library throws. Its kind decides cnvc's exit status.
#pragma once

#include <stdexcept>
#include <string>

#include "cnv/Export.h"

namespace cnv {

class CNV_API Error : public std::runtime_error {
 public:
  enum class Kind {
    Model,     // the .cnv text is wrong (syntax, names, shapes); message holds diagnostics
    Data,      // an input, weight or file does not fit the model
    Usage,     // an API or command line was called the wrong way
    Internal,  // a compiler invariant broke; always a bug in cnv
  };

  // `rendered`: the message is already in the diagnostic format (FILE:LINE:COL: error:
  // MESSAGE, source line, caret) and is shown as it is.
  Error(Kind kind, const std::string& message, bool rendered = false)
      : std::runtime_error(message), kind_(kind), rendered_(rendered) {}
  Kind kind() const { return kind_; }
  bool rendered() const { return rendered_; }

 private:
  Kind kind_;
  bool rendered_;
};

inline Error modelError(const std::string& m) { return Error(Error::Kind::Model, m); }
inline Error dataError(const std::string& m) { return Error(Error::Kind::Data, m); }
inline Error usageError(const std::string& m) { return Error(Error::Kind::Usage, m); }
inline Error internalError(const std::string& m) { return Error(Error::Kind::Internal, m); }

}  // namespace cnv
