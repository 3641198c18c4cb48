/* The C API (cnv/cnv_c.h) from C99, linked with the shared libcnv: results against
 * loops written here, every failure a status and a message, never a crash.
 *
 *   test_c_api        prints one line per check and exits non-zero on any failure */
#include <cnv/cnv_c.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures = 0, checks = 0;

#define CHECK(condition)                                                          \
  do {                                                                            \
    ++checks;                                                                     \
    if (!(condition)) {                                                           \
      ++failures;                                                                 \
      printf("FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #condition, \
             cnv_last_error());                                                   \
    }                                                                             \
  } while (0)

/* y = relu(conv1d(x, w, b, padding=same)), x NCW [N, 3, L], w OIW [4, 3, 3]. */
static const char* kModel =
    "model capi {\n"
    "  input  x : f32[N, 3, L] layout NCW\n"
    "  param  w : f32[4, 3, 3] layout OIW\n"
    "  param  b : f32[4]\n"
    "  y = relu(conv1d(x, w, b, padding=same))\n"
    "  output y\n"
    "}\n";

static void expected(const float* x, const float* w, const float* b, float* y, int n, int l) {
  int s, o, i, p, k;
  for (s = 0; s < n; ++s)
    for (o = 0; o < 4; ++o)
      for (p = 0; p < l; ++p) {
        double sum = b[o];
        for (i = 0; i < 3; ++i)
          for (k = 0; k < 3; ++k) {
            int q = p + k - 1; /* same padding with K = 3: one position each side */
            if (q >= 0 && q < l) sum += (double)w[(o * 3 + i) * 3 + k] * x[(s * 3 + i) * l + q];
          }
        y[(s * 4 + o) * l + p] = sum > 0 ? (float)sum : 0.0f;
      }
}

static int close_enough(const float* a, const float* e, int count) {
  int j;
  for (j = 0; j < count; ++j)
    if (fabsf(a[j] - e[j]) > 1e-4f + 1e-4f * fabsf(e[j])) return 0;
  return 1;
}

static void serial_parallel_for(void* user, int parts, cnv_task_fn task, void* context) {
  int part;
  ++*(int*)user;
  for (part = parts - 1; part >= 0; --part) task(context, part);
}

int main(void) {
  cnv_model* model = NULL;
  cnv_tensor_info info;
  float w[36], b[4], x[2 * 3 * 50], y[2 * 4 * 50], e[2 * 4 * 50];
  int64_t wshape[3] = {4, 3, 3}, bshape[1] = {4}, xshape[3] = {2, 3, 50}, yshape[3] = {2, 4, 50};
  int64_t shape[3] = {0, 0, 0};
  cnv_input in;
  cnv_output out;
  int j, calls = 0; /* runs this small take one part: the host's pool may go unused */
  for (j = 0; j < 36; ++j) w[j] = (float)((j * 7) % 11 - 5) / 4.0f;
  for (j = 0; j < 4; ++j) b[j] = (float)j / 8.0f - 0.2f;
  for (j = 0; j < 300; ++j) x[j] = (float)((j * 37) % 17 - 8) / 8.0f;

  /* Compiling: a bad model is CNV_ERROR with its rendered diagnostic. */
  CHECK(cnv_model_from_source("model m {\n  input x : f32[N, 3, L] layout NCW\n  y = relu(q)\n"
                              "  output y\n}\n",
                              "bad.cnv", NULL, &model) == CNV_ERROR);
  CHECK(model == NULL);
  CHECK(strstr(cnv_last_error(), "bad.cnv:3:") != NULL);
  CHECK(strstr(cnv_last_error(), "error:") != NULL);
  CHECK(cnv_model_from_file("/nonexistent/model.cnv", NULL, &model) == CNV_ERROR);
  CHECK(cnv_model_from_source(NULL, NULL, NULL, &model) == CNV_USAGE_ERROR);
  CHECK(cnv_model_from_source(kModel, NULL, NULL, NULL) == CNV_USAGE_ERROR);
  {
    cnv_options options = {"nosuchmodel", NULL};
    CHECK(cnv_model_from_source(kModel, "capi.cnv", &options, &model) == CNV_USAGE_ERROR);
    options.model = NULL;
    options.cpu = "pentium";
    CHECK(cnv_model_from_source(kModel, "capi.cnv", &options, &model) == CNV_USAGE_ERROR);
  }
  CHECK(cnv_model_from_source(kModel, "capi.cnv", NULL, &model) == CNV_OK);
  if (!model) {
    printf("%d of %d checks failed\n", failures, checks);
    return 1;
  }

  /* The signature. */
  CHECK(strcmp(cnv_model_name(model), "capi") == 0);
  CHECK(cnv_model_count(model, CNV_INPUT) == 1);
  CHECK(cnv_model_count(model, CNV_PARAM) == 2);
  CHECK(cnv_model_count(model, CNV_OUTPUT) == 1);
  CHECK(cnv_model_info(model, CNV_INPUT, 0, &info) == CNV_OK);
  CHECK(strcmp(info.name, "x") == 0 && info.rank == 3 && strcmp(info.dims[0], "N") == 0 &&
        strcmp(info.dims[1], "3") == 0 && strcmp(info.dims[2], "L") == 0 &&
        strcmp(info.layout, "NCW") == 0);
  CHECK(cnv_model_info(model, CNV_PARAM, 1, &info) == CNV_OK);
  CHECK(strcmp(info.name, "b") == 0 && info.rank == 1 && strcmp(info.layout, "") == 0);
  CHECK(cnv_model_info(model, CNV_OUTPUT, 0, &info) == CNV_OK);
  CHECK(strcmp(info.name, "y") == 0 && strcmp(info.dims[1], "4") == 0);
  CHECK(cnv_model_info(model, CNV_OUTPUT, 1, &info) == CNV_USAGE_ERROR);
  CHECK(cnv_model_info(model, (cnv_role)7, 0, &info) == CNV_USAGE_ERROR);
  CHECK(cnv_model_info(model, CNV_INPUT, 0, NULL) == CNV_USAGE_ERROR);

  /* Params. */
  in.name = "x";
  in.data = x;
  in.shape = xshape;
  in.rank = 3;
  out.name = "y";
  out.data = y;
  out.shape = yshape;
  out.rank = 3;
  CHECK(cnv_model_unbound_params(model) == 2);
  CHECK(cnv_model_run(model, &in, 1, &out, 1, 1) == CNV_USAGE_ERROR); /* params not bound */
  CHECK(strstr(cnv_last_error(), "not bound") != NULL);
  CHECK(cnv_model_set_param(model, "nosuch", w, wshape, 3) == CNV_USAGE_ERROR);
  CHECK(cnv_model_set_param(model, "w", w, bshape, 1) == CNV_ERROR); /* wrong shape */
  CHECK(cnv_model_set_param(model, "w", NULL, wshape, 3) == CNV_USAGE_ERROR);
  CHECK(cnv_model_set_param(model, "w", w, NULL, 3) == CNV_USAGE_ERROR);
  CHECK(cnv_model_set_param_npy(model, "w", "/nonexistent.npy") == CNV_ERROR);
  CHECK(cnv_model_load_safetensors(model, "/nonexistent.safetensors") == CNV_ERROR);
  CHECK(cnv_model_set_param(model, "w", w, wshape, 3) == CNV_OK);
  CHECK(cnv_model_set_param(model, "b", b, bshape, 1) == CNV_OK);
  CHECK(cnv_model_unbound_params(model) == 0);

  /* Shapes and runs, against the loops above. */
  CHECK(cnv_model_output_shape(model, &in, 1, 0, shape) == CNV_OK);
  CHECK(shape[0] == 2 && shape[1] == 4 && shape[2] == 50);
  CHECK(cnv_model_output_shape(model, &in, 1, 1, shape) == CNV_USAGE_ERROR);
  expected(x, w, b, e, 2, 50);
  memset(y, 0, sizeof y);
  CHECK(cnv_model_run(model, &in, 1, &out, 1, 0) == CNV_OK);
  CHECK(close_enough(y, e, 400));
  {
    /* A smaller width through the same compiled model. */
    int64_t xs[3] = {1, 3, 7}, ys[3] = {1, 4, 7};
    cnv_input in7 = {"x", x, xs, 3};
    cnv_output out7 = {"y", y, ys, 3};
    float e7[28];
    expected(x, w, b, e7, 1, 7);
    CHECK(cnv_model_run(model, &in7, 1, &out7, 1, 2) == CNV_OK);
    CHECK(close_enough(y, e7, 28));
  }
  /* A host's own pool computes the same bits. */
  {
    float again[400];
    cnv_output out2 = {"y", again, yshape, 3};
    CHECK(cnv_model_run(model, &in, 1, &out, 1, 0) == CNV_OK);
    CHECK(cnv_set_parallel_for(serial_parallel_for, &calls, 0) == CNV_USAGE_ERROR);
    CHECK(cnv_set_parallel_for(serial_parallel_for, &calls, 4) == CNV_OK);
    CHECK(cnv_model_run(model, &in, 1, &out2, 1, 0) == CNV_OK);
    CHECK(cnv_set_parallel_for(NULL, NULL, 0) == CNV_OK);
    CHECK(memcmp(again, y, sizeof again) == 0);
    CHECK(close_enough(again, e, 400));
  }

  /* Bad runs: each a usage or data error, the model still usable after. */
  {
    int64_t wrong[3] = {2, 4, 49}, wrongChannels[3] = {2, 5, 50};
    cnv_output bad = {"y", y, wrong, 3};
    cnv_input badIn = {"x", x, wrongChannels, 3};
    cnv_input two[2];
    cnv_input unknown = {"q", x, xshape, 3};
    cnv_output overlapping = {"y", (float*)x, yshape, 3};
    two[0] = in;
    two[1] = in;
    CHECK(cnv_model_run(model, &in, 1, &bad, 1, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(model, &badIn, 1, &out, 1, 1) == CNV_ERROR);
    CHECK(cnv_model_run(model, two, 2, &out, 1, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(model, &unknown, 1, &out, 1, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(model, NULL, 0, &out, 1, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(model, &in, 1, NULL, 0, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(model, &in, 1, &overlapping, 1, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(NULL, &in, 1, &out, 1, 1) == CNV_USAGE_ERROR);
    CHECK(cnv_model_run(model, &in, 1, &out, 1, 1) == CNV_OK);
  }

  /* Ahead-of-time entry: a damaged program is an error, not a crash. */
  {
    const unsigned char garbage[16] = "CNVPROG1garbage";
    cnv_model* aot = (cnv_model*)1;
    CHECK(cnv_aot_model_create(garbage, sizeof garbage, NULL, 0, &aot) == CNV_ERROR);
    CHECK(aot == NULL);
    CHECK(cnv_aot_model_create(NULL, 0, NULL, 0, &aot) == CNV_USAGE_ERROR);
  }
  CHECK(strlen(cnv_version()) > 0);
  cnv_model_free(model);
  cnv_model_free(NULL);
  printf("%d of %d checks failed\n", failures, checks);
  return failures != 0;
}
