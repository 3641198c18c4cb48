/* A C program using cnv's C API: compile a .cnv model with the JIT, bind its weights
 * from a .safetensors file, run it on a fixed pattern and print every output value.
 *
 *   cc main.c $(pkg-config --cflags --libs cnv) -o host_c
 *   host_c MODEL.cnv WEIGHTS.safetensors [BATCH WIDTH]
 */
#include <cnv/cnv_c.h>

#include "../run_model.h"

int main(int argc, char** argv) {
  cnv_model* model;
  if (argc != 3 && argc != 5) {
    fprintf(stderr, "usage: host_c MODEL.cnv WEIGHTS.safetensors [BATCH WIDTH]\n");
    return 2;
  }
  if (cnv_model_from_file(argv[1], NULL, &model) != CNV_OK) {
    fputs(cnv_last_error(), stderr);
    return 1;
  }
  return run_model(model, argv[2], argc == 5 ? atoll(argv[3]) : 2, argc == 5 ? atoll(argv[4]) : 16);
}
