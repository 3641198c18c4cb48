/* cnv's C API, the part that runs compiled models: handles, errors, the signature,
 * params, output shapes and runs. Both libraries provide it: libcnv (with the compiler,
 * cnv/cnv_c.h) and libcnv-runtime, which runs ahead-of-time objects
 * (`cnvc compile --emit=obj --header`) without LLVM. docs/api.md documents every
 * function with an example.
 *
 * Conventions. Every function that can fail returns a cnv_status; on failure,
 * cnv_last_error() returns the full message (for a problem in the model text, the
 * rendered diagnostics: FILE:LINE:COL: error: MESSAGE, the source line and a caret).
 * No C++ exception crosses this interface. Arrays are dense, row-major float32 in the
 * declared layout of their name. Strings returned by the library live as long as the
 * model they came from (cnv_last_error: until the next failing call on this thread).
 *
 * Threads. A model may be run from any number of threads at once (cnv_model_run is
 * safe to call concurrently on one model, and every result equals the single-threaded
 * one). Binding a param (cnv_model_set_param*) is safe while runs are in flight and
 * never waits for them: a run uses the params bound when it started; runs that start
 * after the call returns use the new value. Models share one
 * process-wide pool of worker threads sized to the cores; cnv_set_parallel_for hands
 * their work to the host's own pool instead. Freeing a model while it runs is an
 * error of the caller. */
#ifndef CNV_CNV_RUNTIME_H
#define CNV_CNV_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "cnv/Export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The exit statuses of cnvc: 1 a problem with the model or the data, 2 a usage error
 * (a wrong call: unknown name, null pointer, wrong buffer). */
typedef enum cnv_status { CNV_OK = 0, CNV_ERROR = 1, CNV_USAGE_ERROR = 2 } cnv_status;

typedef struct cnv_model cnv_model;

/* The message of the last call on this thread that failed; "" if none has. */
CNV_API const char* cnv_last_error(void);
/* "0.1.0" */
CNV_API const char* cnv_version(void);

CNV_API void cnv_model_free(cnv_model* model); /* NULL is fine */

/* --- The signature ------------------------------------------------------------------ */
/* (CNV_ROLE_RANGE_ only widens the type, so that any int passed in is a valid value.) */
typedef enum cnv_role {
  CNV_INPUT = 0,
  CNV_PARAM = 1,
  CNV_OUTPUT = 2,
  CNV_ROLE_RANGE_ = 0x7fffffff
} cnv_role;

typedef struct cnv_tensor_info {
  const char* name;
  size_t rank;
  const char* const* dims; /* rank entries, as declared: "N", "4", "floor((L - 3) / 2) + 1" */
  const char* layout;      /* "NWC", "NCW", "WIO", "OIW", or "" for a bias */
} cnv_tensor_info;

CNV_API const char* cnv_model_name(const cnv_model* model);
/* How many inputs, params or outputs the model has (0 for a NULL model). */
CNV_API size_t cnv_model_count(const cnv_model* model, cnv_role role);
CNV_API cnv_status cnv_model_info(const cnv_model* model, cnv_role role, size_t index,
                                  cnv_tensor_info* info);

/* --- Params ------------------------------------------------------------------------- */
/* Copies (and repacks) `data` of `shape`, which must be the param's declared shape; the
 * caller's buffer may be freed afterwards. */
CNV_API cnv_status cnv_model_set_param(cnv_model* model, const char* name, const float* data,
                                       const int64_t* shape, size_t rank);
/* The same from a .npy file (version 1.0-3.0, '<f4', C order). */
CNV_API cnv_status cnv_model_set_param_npy(cnv_model* model, const char* name, const char* path);
/* Binds every param from the .safetensors tensor of its name; tensors that match no
 * param are ignored. A param without a tensor is left as it was. */
CNV_API cnv_status cnv_model_load_safetensors(cnv_model* model, const char* path);
/* How many params are not bound yet (a run needs all). */
CNV_API size_t cnv_model_unbound_params(const cnv_model* model);

/* --- Running ------------------------------------------------------------------------ */
typedef struct cnv_input {
  const char* name;
  const float* data;
  const int64_t* shape; /* rank 3, in the input's declared layout */
  size_t rank;
} cnv_input;

typedef struct cnv_output {
  const char* name;
  float* data; /* exactly cnv_model_output_shape's elements; overlaps nothing given */
  const int64_t* shape;
  size_t rank;
} cnv_output;

/* The shape (rank 3, in the output's declared layout) output `index` has for these
 * inputs; symbolic dims are bound from the inputs' shapes. */
CNV_API cnv_status cnv_model_output_shape(const cnv_model* model, const cnv_input* inputs,
                                          size_t input_count, size_t index, int64_t shape[3]);
/* Runs the model: every input given once, every output given once, each into a buffer
 * of its exact shape. threads <= 0: all available threads. Shapes, checks and scratch
 * are planned once per size and kept for the next run at that size. */
CNV_API cnv_status cnv_model_run(const cnv_model* model, const cnv_input* inputs,
                                 size_t input_count, const cnv_output* outputs, size_t output_count,
                                 int threads);

/* --- Threads ------------------------------------------------------------------------ */
typedef void (*cnv_task_fn)(void* task_context, int part);
/* Must call task(task_context, part) once for every part in [0, parts), on any threads,
 * and return when all calls have returned. */
typedef void (*cnv_parallel_for_fn)(void* user, int parts, cnv_task_fn task, void* task_context);
/* From now on, models split their work into at most `concurrency` parts and hand them
 * to `parallel_for`; NULL returns to cnv's own pool. Process-wide. */
CNV_API cnv_status cnv_set_parallel_for(cnv_parallel_for_fn parallel_for, void* user,
                                        int concurrency);

/* The most memory a run may ask for (temporaries and scratch): beyond it cnv_model_run
 * fails with CNV_ERROR before allocating. $CNV_MEMORY_LIMIT (bytes, or with K, M, G, T;
 * "off" for none) takes precedence; 0 restores the default, 3/4 of physical memory. */
CNV_API cnv_status cnv_set_memory_limit(int64_t bytes);

/* --- Ahead-of-time objects ---------------------------------------------------------- */
/* What the create function of a header written by `cnvc compile --emit=obj --header`
 * calls; not for direct use. */
typedef void (*cnv_kernel_fn)(float* const* buffers, const int64_t* scalars);
CNV_API cnv_status cnv_aot_model_create(const unsigned char* program, size_t program_size,
                                        const cnv_kernel_fn* kernels, size_t kernel_count,
                                        cnv_model** model);

#ifdef __cplusplus
}
#endif

#endif
