// What kernels are planned for: the vector registers of the CPU the code will run on.
#pragma once

namespace cnv::backend {

struct Target {
  int vectorWidth = 4;  // floats per vector register: 16 with AVX-512, 8 with AVX2, else 4
  int vectorRegisters = 16;
};

}  // namespace cnv::backend
