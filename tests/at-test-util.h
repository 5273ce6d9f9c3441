/* at-test-util.h: shared helpers for the engine tests: the device (skip or fail when there is
 * none), random tensors, and the GPU-against-reference comparison. */
#pragma once

#include "at-engine.h"

G_BEGIN_DECLS

/* The default device, or NULL after g_test_skip() (g_test_fail() when ATELIER_REQUIRE_VULKAN=1,
 * as in CI, where lavapipe must be present). */
AtDevice *at_test_device (void);

/* The path of `relative` inside ../shared/data (beside the source tree), or NULL after
 * g_test_skip() when it is absent (g_error() when ATELIER_REQUIRE_SHARED=1, as in CI). */
char *at_test_shared_path (const char *relative);

/* Runs Debian's /usr/bin/python3 (which has python3-torch / numpy) on tools/ref/`script` with
 * `args` (NULL-terminated). Returns FALSE after g_test_skip() when that interpreter or a module
 * it needs is missing (exit status 77), g_error() then when ATELIER_REQUIRE_SHARED=1; fails the
 * test on any other error. */
gboolean at_test_run_ref_tool (const char *script, const char *const *args);

/* A fresh temporary folder for the test's files (removed at exit). */
const char *at_test_tmpdir (void);

/* Uniform in [lo, hi) from the test's random generator (seeded by g_test's --seed). */
void at_test_fill (float *x, gsize n, float lo, float hi);

/* An input whose random values (uniform in [lo, hi)) are set when at_test_run() compiles. */
AtTensor *at_test_input (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                         float lo, float hi);
/* Same, with given f32 values (converted to the dtype); `values` is copied. */
AtTensor *at_test_input_values (AtGraph *g, const char *name, AtDtype dtype, int ndim,
                                const gint64 *shape, const float *values);
/* A weight in its own buffer, random in [lo, hi) and stored as `dtype` (quantised if asked). */
AtTensor *at_test_weight (AtGraph *g, const char *name, AtDtype dtype, int ndim, const gint64 *shape,
                          float lo, float hi);

/* Compiles the graph (output `out` is marked), sets the inputs, runs it `runs` times on the GPU,
 * computes the reference, and returns the NMSE of the GPU result against it. Fails the test on
 * any error. */
double at_test_run (AtGraph *g, AtTensor *out);

/* Asserts that building `y` failed with a shape error on `g` whose message holds `fragment`. */
void at_test_expect_error (AtGraph *g, AtTensor *y, const char *fragment);

/* Asserts NMSE <= tol, printing the op description when not. */
#define at_test_assert_nmse(nmse, tol, what)                                                        \
  G_STMT_START                                                                                     \
  {                                                                                                \
    double _n = (nmse);                                                                            \
    if (!(_n <= (tol)))                                                                            \
      g_error ("%s: NMSE %.3g exceeds %.3g", (what), _n, (double) (tol));                          \
    g_test_message ("%s: NMSE %.3g", (what), _n);                                                  \
  }                                                                                                \
  G_STMT_END

/* Whether `got` is an f16 value that `want` rounds to: to nearest or toward zero, the two
 * roundings Vulkan allows for a shader's f32 to f16 conversion. */
gboolean at_test_is_f16_of (float got, float want);

/* Little-endian writers for hand-made GGUF files. */
void at_test_put_u32 (GByteArray *b, guint32 v);
void at_test_put_u64 (GByteArray *b, guint64 v);
void at_test_put_str (GByteArray *b, const char *s); /* GGUF string: u64 length, bytes */

/* A GGUF v3 of architecture "llama" with two tensors: token_embd.weight Q8_0 [4, 32] (136
 * bytes) and output_norm.weight F32 [32] (128 bytes), so Q8_0 holds most of the bytes. */
GBytes *at_test_tiny_llama_gguf (void);
/* Writes `len` bytes to `path`, making its folders; asserts on failure. */
void at_test_write_file (const char *path, const void *data, gsize len);
/* The same for a string, and for at_test_tiny_llama_gguf(). */
void at_test_write_text (const char *path, const char *text);
void at_test_write_tiny_llama (const char *path);

G_END_DECLS
