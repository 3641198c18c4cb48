// The C header `cnvc compile --emit=obj --header FILE.h` writes beside an
// ahead-of-time object: the model's create function, and its signature as a comment.
#pragma once

#include <string>

#include "runtime/src/Program.h"

namespace cnv {

// `createFunction`: the object's entry point; `object`: the object file's name, for
// the comment.
std::string formatAotHeader(const rt::Program& program, const std::string& createFunction,
                            const std::string& sourceName, const std::string& object);

}  // namespace cnv
