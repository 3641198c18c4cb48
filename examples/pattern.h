/* The input the C examples feed their model, shared so that their outputs can be
 * compared: element i of an array is ((37 i mod 17) - 8) / 8. */
#ifndef CNV_EXAMPLES_PATTERN_H
#define CNV_EXAMPLES_PATTERN_H

#include <stdint.h>

static void fill_pattern(float* data, int64_t count) {
  for (int64_t i = 0; i < count; ++i) data[i] = (float)((i * 37) % 17 - 8) / 8.0f;
}

#endif
