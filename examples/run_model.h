/* What both C examples do with a model once they have one: bind its params from a
 * .safetensors file, give every input the shared pattern (symbolic batch and width
 * from the command line), run it, print every output value. Only cnv/cnv_runtime.h,
 * so that it serves the JIT (libcnv) and ahead-of-time objects (libcnv-runtime). */
#ifndef CNV_EXAMPLES_RUN_MODEL_H
#define CNV_EXAMPLES_RUN_MODEL_H

#include <cnv/cnv_runtime.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "pattern.h"

static int fail(const char* what) {
  fprintf(stderr, "%s: %s", what, cnv_last_error());
  return 1;
}

/* Runs `model` and frees it. Returns the exit status. */
static int run_model(cnv_model* model, const char* weights, int64_t batch, int64_t width) {
  int status = 1;
  size_t inputs = cnv_model_count(model, CNV_INPUT), outputs = cnv_model_count(model, CNV_OUTPUT);
  cnv_input* in = calloc(inputs, sizeof *in);
  cnv_output* out = calloc(outputs, sizeof *out);
  int64_t(*in_shapes)[3] = calloc(inputs, sizeof *in_shapes);
  int64_t(*out_shapes)[3] = calloc(outputs, sizeof *out_shapes);
  size_t i, j;
  if (!in || !out || !in_shapes || !out_shapes) goto done;
  if (cnv_model_load_safetensors(model, weights) != CNV_OK) {
    status = fail("binding the weights");
    goto done;
  }
  if (cnv_model_unbound_params(model) != 0) {
    fprintf(stderr, "%s lacks some of the model's params\n", weights);
    goto done;
  }
  for (i = 0; i < inputs; ++i) {
    cnv_tensor_info info;
    int64_t count = 1;
    if (cnv_model_info(model, CNV_INPUT, i, &info) != CNV_OK) {
      status = fail("the signature");
      goto done;
    }
    for (j = 0; j < 3; ++j) {
      const char* dim = info.dims[j];
      /* A symbolic dim: the batch first, the width elsewhere. */
      in_shapes[i][j] = isdigit((unsigned char)dim[0]) ? atoll(dim) : j == 0 ? batch : width;
      count *= in_shapes[i][j];
    }
    in[i].name = info.name;
    in[i].shape = in_shapes[i];
    in[i].rank = 3;
    in[i].data = malloc((size_t)count * sizeof(float));
    if (!in[i].data) goto done;
    fill_pattern((float*)in[i].data, count);
  }
  for (i = 0; i < outputs; ++i) {
    cnv_tensor_info info;
    int64_t count = 1;
    if (cnv_model_info(model, CNV_OUTPUT, i, &info) != CNV_OK ||
        cnv_model_output_shape(model, in, inputs, i, out_shapes[i]) != CNV_OK) {
      status = fail("the output shapes");
      goto done;
    }
    for (j = 0; j < 3; ++j) count *= out_shapes[i][j];
    out[i].name = info.name;
    out[i].shape = out_shapes[i];
    out[i].rank = 3;
    out[i].data = malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    if (!out[i].data) goto done;
  }
  if (cnv_model_run(model, in, inputs, out, outputs, 0) != CNV_OK) {
    status = fail("running the model");
    goto done;
  }
  for (i = 0; i < outputs; ++i) {
    int64_t k, count = out_shapes[i][0] * out_shapes[i][1] * out_shapes[i][2];
    printf("%s [%lld, %lld, %lld]\n", out[i].name, (long long)out_shapes[i][0],
           (long long)out_shapes[i][1], (long long)out_shapes[i][2]);
    for (k = 0; k < count; ++k) printf("%.9g\n", out[i].data[k]);
  }
  status = 0;
done:
  for (i = 0; in && i < inputs; ++i) free((void*)in[i].data);
  for (i = 0; out && i < outputs; ++i) free(out[i].data);
  free(in);
  free(out);
  free(in_shapes);
  free(out_shapes);
  cnv_model_free(model);
  return status;
}

#endif
