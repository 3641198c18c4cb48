/* Marks what libcnv and libcnv-runtime export: everything else in them is hidden. */
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define CNV_API __attribute__((visibility("default")))
#else
#define CNV_API
#endif
