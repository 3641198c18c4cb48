/* A C program that runs a model compiled ahead of time: no LLVM and no compiler at
 * run time, only cnv's runtime library.
 *
 *   cnvc compile ../block.cnv --emit=obj -o block.o --header block.h
 *   cc main.c block.o $(pkg-config --cflags --libs cnv-runtime) -o aot
 *   aot WEIGHTS.safetensors [BATCH WIDTH]
 */
#include "../run_model.h"
#include "block.h"

int main(int argc, char** argv) {
  cnv_model* model;
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: aot WEIGHTS.safetensors [BATCH WIDTH]\n");
    return 2;
  }
  if (cnv_block_create(&model) != CNV_OK) {
    fputs(cnv_last_error(), stderr);
    return 1;
  }
  return run_model(model, argv[1], argc == 4 ? atoll(argv[2]) : 2, argc == 4 ? atoll(argv[3]) : 16);
}
