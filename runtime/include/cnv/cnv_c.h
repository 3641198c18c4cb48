/* cnv's C API: compile a .cnv model with the JIT, bind its weights, run it.
 *
 *   cnv_model* model;
 *   if (cnv_model_from_file("block.cnv", NULL, &model) != CNV_OK) {
 *     fprintf(stderr, "%s", cnv_last_error());
 *     return 1;
 *   }
 *
 * Link with libcnv (pkg-config cnv, or cnv::cnv in CMake). Everything about running a
 * model, threads and errors is in cnv/cnv_runtime.h; docs/api.md has the whole API. */
#ifndef CNV_CNV_C_H
#define CNV_CNV_C_H

#include "cnv/cnv_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnv_options {
  const char* model; /* which model of the file; NULL when it holds one */
  /* The CPU to generate code for: NULL or "host" for this machine, or "x86-64",
   * "x86-64-v2", "x86-64-v3" (AVX2), "x86-64-v4" (AVX-512). */
  const char* cpu;
} cnv_options;

/* Compiles the model of a file (options may be NULL). On success *model is a new
 * handle for cnv_model_free. Compiled kernels are kept in the compile cache
 * ($CNV_CACHE_DIR, else $XDG_CACHE_HOME/cnv, else ~/.cache/cnv; CNV_CACHE=off). */
CNV_API cnv_status cnv_model_from_file(const char* path, const cnv_options* options,
                                       cnv_model** model);
/* The same from source text; `file_name` (may be NULL) names it in diagnostics. */
CNV_API cnv_status cnv_model_from_source(const char* source, const char* file_name,
                                         const cnv_options* options, cnv_model** model);

#ifdef __cplusplus
}
#endif

#endif
