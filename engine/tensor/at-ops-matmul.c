/* at-ops-matmul.c: d = a @ b^T with b in the nn.Linear layout, f32/f16/bf16 or GGUF-quantised.
 * Shaders: shaders/matvec.comp, shaders/matmul_cpu.comp, shaders/matmul_gpu.comp (shared code
 * in matmul-common.glsl and dequant.glsl).
 *
 * Traps:
 * - Quantised rows are only 2-byte aligned (q8_0 blocks are 34 bytes): b is bound as bytes and
 *   the shaders read 32-bit fields at even addresses (wu32 in dequant.glsl).
 * - A weight larger than maxStorageBufferRange (128 MiB on lavapipe) is split into chunks of
 *   rows, one dispatch each; only an unbatched b can be split.
 * - The CPU GEMM needs a workgroup of exactly one subgroup: its workgroup size is the device's
 *   subgroup size (true on lavapipe; forced onto a GPU it still passed the tests on an H100).
 *   The matrix-vector kernel folds across subgroups on GPUs (MULTI_SG).
 * - lavapipe runs both sides of a branch it cannot prove uniform, and each per-lane storage
 *   load is a scalar loop over lanes: alignment fast paths are spec constants (A_VEC, B_VEC)
 *   chosen here, the K % 4 tail sits outside the main loops, and the matrix-vector kernel reads
 *   quantised weights 32 elements at a time (load_b32).
 * - On CPU devices the matrix-vector kernel and the GEMM are the TEXEL variants (matvec_texel,
 *   matmul_cpu_texel): a and b are uniform texel buffers, whose fetches lavapipe gathers (the
 *   storage variants stay for a batched b too large for one view, and as forced paths for the
 *   tests); each fetch still costs far more than
 *   the arithmetic, so rows starting at 16 bytes are RGBA32UI views and q8_0 / q4_0 / q4_K are
 *   read 256 elements (whole texels) per lane (GROUP). A view is limited to
 *   maxTexelBufferElements texels: b is split as for storage ranges, by that limit.
 * - For a vector times q8_0 / q4_0 / q4_K / q6_K (token generation) lanes own rows instead
 *   (matvec_rows): any K and any row alignment, with each row's misalignment a spec constant
 *   (q6_K: words, the 2-byte misalignment of its 210-byte super-blocks taken at run time).
 *   Its locals are indexed only by constants after unrolling: a local array indexed at run
 *   time becomes per-lane scratch memory on lavapipe, which made a first version 20x slower.
 * - The reference accumulates in double; the GPU in float, in another order: compare by NMSE.
 * - Fused variants (at_matmul_add, _rms, _swiglu) are separate ops sharing encode_matmul, told
 *   apart by dst->op. The addend is added at every kernel's store (store_d); the norm and the
 *   SwiGLU only in matvec_rows, so their constructors build the plain ops wherever
 *   rows_kernel_takes says that kernel will not run, and encode fails loudly if it was wrong.
 */
#include "at-ops-matmul.h"

#include <math.h>
#include <string.h>

#include "at-error.h"
#include "at-ops-norm.h"
#include "at-ops-private.h"

/* Matrix-vector: rows of b and of a per workgroup. */
#define MV_ROWS 4
#define MV_ROWS_TEXEL 8
#define MV_M 4
/* CPU GEMM: rows of a per workgroup, columns per lane. */
#define CPU_TM 32
#define CPU_TN 8
/* GPU GEMM: tile of d per workgroup of 256. */
#define GPU_TILE 64
#define GPU_WG 256

typedef enum
{
  PATH_MATVEC,
  PATH_GEMM_CPU,
  PATH_GEMM_GPU,
} MatmulPath;

/* Mirror of the push-constant block in shaders/matmul-common.glsl. */
typedef struct
{
  guint32 M, N, K;
  guint32 n0, nrows;
  guint32 oa, sam;
  guint32 sa0, sa1;
  guint32 ob;
  guint32 sbn;
  guint32 sb0, sb1;
  guint32 od;
  guint32 D1;
  guint32 r0, r1;
  guint32 oc;
  float eps;
  guint32 og;
  guint32 gk;
  guint32 opos, off, okc, ovc, ncache, n_rot;
  float base, freq_scale;
} MatmulPush;
G_STATIC_ASSERT (sizeof (MatmulPush) == 116);

/* MatmulPush.oc without an addend c, .og without a norm. */
#define NO_C G_MAXUINT32

/* The matmul nodes' parameters: at_matmul_rms's epsilon, and qa8 (a q4_0 b on the rows
 * kernel: a is quantised to 8 bits per block of 32 first, see matvec_rows.comp). */
typedef struct
{
  float eps;
  gboolean qa8;
  /* at_matmul_rope_cache: RoPE's (normal mode), the heads, and the src indices of the
   * position, the frequency factors (-1: none) and the caches. */
  gint32 n_rot, nq, nkv, hd;
  float base, freq_scale;
  gint32 pos, ff, kc, vc;
} MatmulParams;

static const AtOp matmul_add_op, matmul_rms_op, matmul_swiglu_op, matmul_rope_op;

static const AtDtype weight_dtypes[] = {
  AT_DTYPE_F32, AT_DTYPE_F16, AT_DTYPE_BF16, AT_DTYPE_Q8_0, AT_DTYPE_Q4_0, AT_DTYPE_Q4_1,
  AT_DTYPE_Q5_0, AT_DTYPE_Q5_1, AT_DTYPE_Q4_K, AT_DTYPE_Q5_K, AT_DTYPE_Q6_K,
};

/* ---- reference ---- */

static gboolean
qa8 (const AtTensor *dst)
{
  return ((const MatmulParams *) dst->params)->qa8;
}

/* x (n, a multiple of 32) as matvec_rows.comp's QA8 sees it: per block of 32, c =
 * round-half-even (x 127 / max|x|), times max|x| / 127. */
static void
quantize_a8 (const float *x, gint64 n, float *out)
{
  for (gint64 b = 0; b < n; b += 32)
    {
      float amax = 0, id, d;

      for (gint64 i = b; i < b + 32; i++)
        amax = MAX (amax, fabsf (x[i]));
      id = amax > 0 ? 127.0f / amax : 0.0f;
      d = amax / 127.0f;
      for (gint64 i = b; i < b + 32; i++)
        out[i] = nearbyintf (x[i] * id) * d;
    }
}

/* Plain triple loop over contiguous f32 sources, accumulating in double (with qa8, a
 * quantised first). */
static void
ref_matmul (const AtTensor *dst, const float *const *src, float *out)
{
  gint64 as[4], bs[4], ds[4], st[4];
  gint64 M, N, K;
  g_autofree float *aq = NULL;
  const float *qsrc[2];

  if (qa8 (dst))
    {
      gint64 n = at_tensor_numel (dst->src[0]);

      aq = g_new (float, n);
      quantize_a8 (src[0], n, aq);
      qsrc[0] = aq;
      qsrc[1] = src[1];
      src = qsrc;
    }
  at_tensor_shape4 (dst->src[0], as, st);
  at_tensor_shape4 (dst->src[1], bs, st);
  at_tensor_shape4 (dst, ds, st);
  M = as[2];
  K = as[3];
  N = bs[2];
  for (gint64 i0 = 0; i0 < ds[0]; i0++)
    for (gint64 i1 = 0; i1 < ds[1]; i1++)
      {
        /* a broadcasts where its dimension is 1; b batch i / (D / Bb) (GQA, or 0 if 1). */
        gint64 a0 = as[0] == 1 ? 0 : i0, a1 = as[1] == 1 ? 0 : i1;
        gint64 b0 = i0 / (ds[0] / bs[0]), b1 = i1 / (ds[1] / bs[1]);
        const float *A = src[0] + (a0 * as[1] + a1) * M * K;           /* [M, K] */
        const float *B = src[1] + (b0 * bs[1] + b1) * N * K;           /* [N, K] */
        float *D = out + (i0 * ds[1] + i1) * M * N;                    /* [M, N] */
        for (gint64 m = 0; m < M; m++)
          for (gint64 n = 0; n < N; n++)
            {
              double s = 0;
              for (gint64 k = 0; k < K; k++)
                s += (double) A[m * K + k] * B[n * K + k];
              D[m * N + n] = (float) s;
            }
      }
}

/* at_matmul_add: the product, then c (contiguous, d's shape) added. */
static void
ref_matmul_add (const AtTensor *dst, const float *const *src, float *out)
{
  gint64 n = at_tensor_numel (dst);

  ref_matmul (dst, src, out);
  for (gint64 i = 0; i < n; i++)
    out[i] = (float) ((double) out[i] + src[2][i]);
}

/* at_matmul_rms: a RMS-normalised (as ref_norm does it) with the weight src[2], then the
 * product. */
static void
ref_matmul_rms (const AtTensor *dst, const float *const *src, float *out)
{
  const MatmulParams *p = (const MatmulParams *) dst->params;
  const AtTensor *a = dst->src[0];
  gint64 K = a->shape[a->ndim - 1], rows = at_tensor_numel (a) / K;
  g_autofree float *h = g_new (float, rows * K);

  for (gint64 r = 0; r < rows; r++)
    {
      const float *x = src[0] + r * K;
      double ss = 0;
      float rstd;

      for (gint64 i = 0; i < K; i++)
        ss += (double) x[i] * x[i];
      rstd = (float) (1.0 / sqrt (ss / K + p->eps));
      for (gint64 i = 0; i < K; i++)
        h[r * K + i] = x[i] * rstd * src[2][i];
    }
  ref_matmul (dst, (const float *const[]){ h, src[1] }, out);
}

/* at_matmul_rope_cache: at_matmul_rms's product, then at_rope_cache's turn of the q and k
 * heads (the caches' writes are checked by the tests from the caches themselves). */
static void
ref_matmul_rope (const AtTensor *dst, const float *const *src, float *out)
{
  const MatmulParams *p = (const MatmulParams *) dst->params;
  gint64 n = at_tensor_numel (dst);
  g_autofree float *h = g_new (float, n);

  ref_matmul_rms (dst, src, h);
  at_rope_ref_token (h, out, n / p->hd, p->nq + p->nkv, p->hd, p->n_rot, AT_ROPE_NORMAL,
                     src[p->pos][0], p->base, p->freq_scale, p->ff >= 0 ? src[p->ff] : NULL);
}

/* at_matmul_swiglu: a vector [gate | up] of 2 K, silu (gate) * up, times b [N, K] (plus c). */
static void
ref_matmul_swiglu (const AtTensor *dst, const float *const *src, float *out)
{
  const AtTensor *b = dst->src[1];
  gint64 K = b->shape[b->ndim - 1], N = b->shape[b->ndim - 2];
  g_autofree double *h = g_new (double, K);

  for (gint64 k = 0; k < K; k++)
    h[k] = (double) src[0][k] / (1.0 + exp (-(double) src[0][k])) * src[0][K + k];
  if (qa8 (dst))
    {
      g_autofree float *hf = g_new (float, K);

      for (gint64 k = 0; k < K; k++)
        hf[k] = (float) h[k];
      quantize_a8 (hf, K, hf);
      for (gint64 k = 0; k < K; k++)
        h[k] = hf[k];
    }
  for (gint64 n = 0; n < N; n++)
    {
      double s = 0;
      for (gint64 k = 0; k < K; k++)
        s += h[k] * src[1][n * K + k];
      out[n] = (float) (dst->src[2] != NULL ? s + src[2][n] : s);
    }
}

/* ---- encode ---- */

static MatmulPath
choose_path (AtEncoder *enc, guint32 M, gboolean *multi, int *texel)
{
  const char *force = g_getenv ("ATELIER_MATMUL_PATH");

  *multi = FALSE;
  *texel = -1;
  if (force != NULL && *force != '\0')
    {
      if (strcmp (force, "matvec") == 0)
        return PATH_MATVEC;
      if (strcmp (force, "matvec-texel") == 0 || strcmp (force, "matvec-storage") == 0)
        {
          *texel = strcmp (force, "matvec-texel") == 0;
          return PATH_MATVEC;
        }
      if (strcmp (force, "matvec-multi") == 0)
        {
          *multi = TRUE;
          return PATH_MATVEC;
        }
      if (strcmp (force, "gemm-cpu") == 0)
        return PATH_GEMM_CPU;
      if (strcmp (force, "gemm-cpu-texel") == 0 || strcmp (force, "gemm-cpu-storage") == 0)
        {
          *texel = strcmp (force, "gemm-cpu-texel") == 0;
          return PATH_GEMM_CPU;
        }
      if (strcmp (force, "gemm-gpu") == 0)
        return PATH_GEMM_GPU;
      g_warning ("ATELIER_MATMUL_PATH=%s is none of matvec, matvec-texel, matvec-storage, "
                 "matvec-multi, gemm-cpu, gemm-cpu-texel, gemm-cpu-storage, gemm-gpu; ignored",
                 force);
    }
  if (M <= MV_M)
    return PATH_MATVEC;
  return at_encoder_get_info (enc)->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? PATH_GEMM_CPU
                                                                        : PATH_GEMM_GPU;
}

/* Bytes one binding of b may span: the device's limit, or less with ATELIER_MAX_BINDING_BYTES;
 * a texel view's own limit (ATELIER_MAX_TEXEL_ELEMENTS lowers it) with `texel`. */
static guint64
max_binding_bytes (AtEncoder *enc, gboolean texel, guint64 *alignment)
{
  guint64 limit = at_encoder_get_info (enc)->max_storage_buffer_range;
  const char *env = g_getenv ("ATELIER_MAX_BINDING_BYTES");

  *alignment = at_encoder_get_info (enc)->min_storage_buffer_offset_alignment;
  if (texel)
    {
      at_buffer_texel_support (at_encoder_get_device (enc), VK_FORMAT_R32_UINT, &limit, alignment);
      return limit;
    }
  if (env != NULL && *env != '\0')
    limit = MIN (limit, g_ascii_strtoull (env, NULL, 10));
  return limit;
}

/* Whether the matrix-vector kernel reads a and b as texel buffers: on CPU devices (lavapipe
 * gathers texels where it loops over lanes for storage loads) that have R32UI views; `force`
 * (1 or 0; -1 none) from ATELIER_MATMUL_PATH=matvec-texel or matvec-storage. */
static gboolean
want_texel (AtEncoder *enc, int force)
{
  gboolean on = force >= 0 ? force : at_encoder_get_info (enc)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;

  return on && at_buffer_texel_support (at_encoder_get_device (enc), VK_FORMAT_R32_UINT, NULL, NULL);
}

/* Sizes and strides of d = a @ b^T for the shaders; `rb` gets the bytes of one row of b. */
static void
fill_push (const AtTensor *dst, MatmulPush *push, gsize *rb)
{
  const AtTensor *a = dst->src[0], *b = dst->src[1];
  const AtDtypeInfo *binfo = at_dtype_info (b->dtype);
  gint64 as[4], ast[4], bs[4], bst[4], ds[4], dst4[4];

  at_tensor_shape4 (a, as, ast);     /* [A0, A1, M, K] */
  at_tensor_shape4 (b, bs, bst);     /* [B0, B1, N, K] */
  at_tensor_shape4 (dst, ds, dst4);  /* [D0, D1, M, N] */
  push->M = (guint32) as[2];
  push->K = (guint32) as[3];
  push->N = (guint32) bs[2];
  push->sam = (guint32) ast[2];
  push->sa0 = as[0] == 1 ? 0 : (guint32) ast[0];
  push->sa1 = as[1] == 1 ? 0 : (guint32) ast[1];
  *rb = at_dtype_row_bytes (b->dtype, bs[3]);
  /* Quantised tensors are contiguous whole rows; plain ones may have a row stride. Strides
   * in elements become bytes (whole blocks for quantised b). */
  push->sbn = binfo->quantized ? (guint32) *rb : (guint32) (bst[2] * binfo->type_size);
  push->sb0 = bs[0] == 1 ? 0 : (guint32) (bst[0] / binfo->block_size * binfo->type_size);
  push->sb1 = bs[1] == 1 ? 0 : (guint32) (bst[1] / binfo->block_size * binfo->type_size);
  push->D1 = (guint32) ds[1];
  push->r0 = (guint32) (ds[0] / bs[0]);
  push->r1 = (guint32) (ds[1] / bs[1]);
}

/* The kernel and its constants; `n_per`, `m_per`: rows of b and of a per workgroup. */
static void
pick_kernel (AtEncoder *enc, const AtTensor *dst, AtPipelineDesc *desc, const char **label,
             guint64 *n_per, guint64 *m_per, gboolean *texel)
{
  const AtDeviceInfo *info = at_encoder_get_info (enc);
  const AtTensor *a = dst->src[0];
  guint32 M = a->ndim >= 2 ? (guint32) a->shape[a->ndim - 2] : 1;
  gboolean multi;
  int force_texel;

  *texel = FALSE;
  *desc = (AtPipelineDesc) { NULL, 12, { 0 }, 4, sizeof (MatmulPush) };
  desc->spec[1] = desc->spec[2] = 1;
  desc->spec[3] = dst->src[1]->dtype;
  desc->spec[4] = a->dtype == AT_DTYPE_F16 ? 1 : 0;
  switch (choose_path (enc, M, &multi, &force_texel))
    {
    case PATH_MATVEC:
      *label = desc->shader = "matvec";
      *texel = want_texel (enc, force_texel);
      desc->spec[0] = info->subgroup_size;
      /* GPUs may run a workgroup of the reported subgroup size as several subgroups (Intel
       * picks SIMD8/16/32 per shader): fold across subgroups there. "matvec-multi" tests that
       * code on any device with a workgroup of four subgroups. */
      desc->spec[9] = info->type != VK_PHYSICAL_DEVICE_TYPE_CPU || multi;
      if (multi)
        desc->spec[0] = MIN (4 * info->subgroup_size, 1024);
      desc->spec[5] = MV_ROWS;
      /* Texel reads on lavapipe: more rows share each fetch of a vector (measured). */
      if (*texel && M == 1)
        desc->spec[5] = MV_ROWS_TEXEL;
      *n_per = desc->spec[5];
      /* Rows of a per workgroup: one for a vector, else MV_M (rows past M are read again and
       * dropped); two variants keep the number of pipelines down. */
      desc->spec[6] = M == 1 ? 1 : MV_M;
      *m_per = desc->spec[6];
      break;
    case PATH_GEMM_CPU:
      desc->shader = "matmul_cpu";
      *label = "matmul";
      /* Texel reads on CPU devices: on lavapipe a storage load with a per-lane address is a
       * per-lane loop, and with AVX2 (no AVX-512 masks) each lane's word is stored into the
       * vector through the stack and read back whole, a failed store forwarding a lane; the
       * texel gather took the 2048^3 product from 8.4 to 33.8 GFLOP/s on a Zen 3. */
      *texel = want_texel (enc, force_texel);
      desc->spec[0] = info->subgroup_size;
      desc->spec[5] = CPU_TM;
      desc->spec[6] = CPU_TN;
      *n_per = (guint64) info->subgroup_size * CPU_TN;
      *m_per = CPU_TM;
      break;
    default:
      desc->shader = "matmul_gpu";
      *label = "matmul";
      desc->spec[0] = GPU_WG;
      *n_per = *m_per = GPU_TILE;
      break;
    }
}

/* Rows of b per dispatch: all of them, or as many as fit one binding (unbatched b only);
 * 0 (and an error) when not even one row fits. */
static guint64
chunk_rows (AtEncoder *enc, const AtTensor *b, gsize rb, gsize sbn, guint64 n_per, gboolean texel,
            GError **error)
{
  guint64 alignment, limit = max_binding_bytes (enc, texel, &alignment), N = (guint64) b->shape[b->ndim - 2];
  gboolean batched = (guint64) (at_tensor_numel (b) / b->shape[b->ndim - 1]) > N;
  /* Slack for the binding's alignment and rounding (at_encoder_bind_range, _texel). */
  guint64 slack = alignment + 4;
  guint64 rows;

  if (batched || (N - 1) * sbn + rb + slack <= limit)
    rows = N;
  else if (limit < rb + slack)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "matmul: one row of %s (%" G_GSIZE_FORMAT " bytes) exceeds the binding limit",
                   b->name, rb);
      return 0;
    }
  else
    rows = (limit - rb - slack) / sbn + 1;
  /* The grid's x dimension holds at most 65535 workgroups. */
  return MIN (rows, 65535 * n_per);
}

/* matvec_rows.comp's bindings 5-8: at_matmul_rope_cache's position, frequency factors and
 * caches, with its constants; for the other products a and d again, unread and unwritten. */
static gboolean
bind_rope (AtEncoder *enc, const AtTensor *dst, MatmulPush *push, AtPipelineDesc *desc,
           AtBinding bind[9], GError **error)
{
  const MatmulParams *p = (const MatmulParams *) dst->params;
  const AtTensor *kc;
  guint unit;

  if (dst->op != &matmul_rope_op)
    {
      bind[5] = bind[6] = at_encoder_bind (enc, dst->src[0], FALSE, NULL, 4);
      bind[7] = bind[8] = at_encoder_bind (enc, dst, TRUE, NULL, 4);
      return TRUE;
    }
  kc = dst->src[p->kc];
  unit = kc->dtype == AT_DTYPE_F16 ? 2 : 4;
  bind[5] = at_encoder_bind (enc, dst->src[p->pos], FALSE, &push->opos, 4);
  push->off = NO_C;
  if (p->ff >= 0)
    bind[6] = at_encoder_bind (enc, dst->src[p->ff], FALSE, &push->off, 4);
  else
    bind[6] = bind[5];
  bind[7] = at_encoder_bind (enc, kc, TRUE, &push->okc, unit);
  bind[8] = at_encoder_bind (enc, dst->src[p->vc], TRUE, &push->ovc, unit);
  /* f16 caches are written a word (two halves) at a time. */
  if (unit == 2 && (push->okc % 2 != 0 || push->ovc % 2 != 0))
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "matmul_rope_cache: the f16 caches must start at 4 bytes");
      return FALSE;
    }
  push->ncache = (guint32) kc->shape[0];
  push->n_rot = (guint32) p->n_rot;
  push->base = p->base;
  push->freq_scale = p->freq_scale;
  desc->n_spec = 25;
  desc->spec[20] = TRUE;
  desc->spec[21] = (guint32) p->hd;
  desc->spec[22] = (guint32) p->nq;
  desc->spec[23] = (guint32) p->nkv;
  desc->spec[24] = unit == 2;
  return TRUE;
}

static gboolean
encode_matmul (AtEncoder *enc, AtTensor *dst, GError **error)
{
  const AtTensor *a = dst->src[0], *b = dst->src[1];
  /* d is [..., M, N] with at least 2 dimensions (b has them). */
  guint64 n_batch = (guint64) (at_tensor_numel (dst) / dst->shape[dst->ndim - 1] / dst->shape[dst->ndim - 2]);
  guint64 per_chunk, n_per, m_per;
  const AtDtypeInfo *binfo = at_dtype_info (b->dtype);
  const MatmulParams *mp = (const MatmulParams *) dst->params;
  gboolean rope = dst->op == &matmul_rope_op, rms = rope || dst->op == &matmul_rms_op;
  MatmulPush push = { 0 };
  AtPipelineDesc desc;
  AtBinding bind[9];
  const char *label;
  gboolean texel, own_rows = FALSE, g_rgba = FALSE;
  gsize rb;

  fill_push (dst, &push, &rb);
  if (dst->op == &matmul_swiglu_op)
    push.K = push.gk = (guint32) b->shape[b->ndim - 1]; /* a holds 2 K: gate, then up */
  pick_kernel (enc, dst, &desc, &label, &n_per, &m_per, &texel);
  if (n_batch > at_encoder_get_info (enc)->max_workgroup_count[2])
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "matmul: %" G_GUINT64_FORMAT " batches exceed the device's grid", n_batch);
      return FALSE;
    }
  bind[2] = at_encoder_bind (enc, dst, TRUE, &push.od, 4);
  /* The addend of at_matmul_add; else a bound again, unread. */
  push.oc = push.og = NO_C;
  if (dst->op == &matmul_add_op || (dst->op == &matmul_swiglu_op && dst->src[2] != NULL))
    bind[3] = at_encoder_bind (enc, dst->src[2], FALSE, &push.oc, 4);
  else
    bind[3] = at_encoder_bind (enc, a, FALSE, NULL, 1);
  if (texel)
    {
      /* a as RGBA32UI where every row of f32 a starts at a texel, else R32UI; a batched b must
       * fit one view (it cannot be split). Failing either, the storage kernel. */
      guint unit = a->dtype == AT_DTYPE_F16 ? 2 : 4;
      texel = a->dtype == AT_DTYPE_F32
              && at_encoder_bind_texel (enc, a, 0, 0, VK_FORMAT_R32G32B32A32_UINT, &bind[0], &push.oa, unit)
              && (push.oa | push.sam | push.sa0 | push.sa1) % 4 == 0;
      if (!texel)
        texel = at_encoder_bind_texel (enc, a, 0, 0, VK_FORMAT_R32_UINT, &bind[0], &push.oa, unit);
      if (texel && (guint64) (at_tensor_numel (b) / b->shape[b->ndim - 1]) > push.N)
        texel = at_encoder_bind_texel (enc, b, 0, 0, VK_FORMAT_R32_UINT, &bind[1], &push.ob, 1);
    }
  if (texel)
    {
      desc.shader = g_str_equal (desc.shader, "matmul_cpu") ? "matmul_cpu_texel" : "matvec_texel";
      desc.texel_bindings = 0x3;
      /* Lanes own rows (matvec_rows.comp): q8_0 / q4_0 / q4_K / q6_K b, a vector a in RGBA32UI texels,
       * a workgroup of one subgroup (not "matvec-multi"), batch strides of whole texels (they
       * keep each row's misalignment). Rows n, n + P, ... share one misalignment. Rows a lane
       * (RR, each pass): every row a lane reads at once is one more stream through memory, and
       * weights read from RAM, not cache, go faster with fewer: q8_0 / q4_0 take one (4096 x
       * 4096 past the caches, best of runs: q8_0 1.58 ms against 1.86 with four, q4_0 1.25
       * against 1.58; SmolLM's K 1536 rows 0.29 against 0.39), q4_K and q6_K four (q4_K 0.94
       * against 1.10 with one). With a quantised to 8 bits (QA8) two rows a lane share its
       * quantisation and ran a single matrix (cached) faster, q4_0 4096 x 4096 11.3-11.5 GB/s
       * against 9.0-9.1; but the 1.1B Q4_0 file generated slower with two, four alternating
       * pairs of bench text --quick: 8.6-10.4 tokens/s against 10.9-11.6. */
      if ((b->dtype == AT_DTYPE_Q8_0 || b->dtype == AT_DTYPE_Q4_0 || b->dtype == AT_DTYPE_Q4_K
           || b->dtype == AT_DTYPE_Q6_K)
          && push.M == 1 && desc.spec[0] == at_encoder_get_info (enc)->subgroup_size
          && bind[0].format == VK_FORMAT_R32G32B32A32_UINT
          && (push.sb0 | push.sb1) % 16 == 0)
        {
          /* Binding 4: at_matmul_rms's norm weight (else a again, unread). */
          if (rms)
            {
              /* RGBA32UI where the weight starts on a texel: a quarter of the fetches. */
              push.eps = mp->eps;
              g_rgba = at_encoder_bind_texel (enc, dst->src[2], 0, 0, VK_FORMAT_R32G32B32A32_UINT,
                                              &bind[4], &push.og, 4)
                       && push.og % 4 == 0;
              own_rows = g_rgba || at_encoder_bind_texel (enc, dst->src[2], 0, 0, VK_FORMAT_R32_UINT,
                                                          &bind[4], &push.og, 4);
            }
          else
            own_rows = at_encoder_bind_texel (enc, a, 0, 0, VK_FORMAT_R32_UINT, &bind[4], NULL, 4);
        }
      if (own_rows)
        {
          /* q6_K rows are read as words, their misalignment taken at run time: one pass. */
          guint32 step = b->dtype == AT_DTYPE_Q6_K ? 0 : push.sbn % 16;
          guint32 passes = step == 0 ? 1 : step % 8 == 0 ? 2 : step % 4 == 0 ? 4 : 8;

          desc.shader = "matvec_rows";
          desc.n_spec = 20;
          desc.spec[19] = qa8 (dst);
          desc.spec[15] = g_rgba;
          /* K of at most eight steps of 256 unrolled (see matvec_rows.comp); fused variants by
           * spec constant, not by a branch on the push constants. */
          desc.spec[16] = push.K / 256 <= 8 ? push.K / 256 : 0;
          desc.spec[17] = rms;
          desc.spec[18] = dst->op == &matmul_swiglu_op;
          desc.n_bindings = 9;
          desc.texel_bindings |= 0x10;
          desc.spec[5] = b->dtype == AT_DTYPE_Q6_K || b->dtype == AT_DTYPE_Q4_K ? 4 : 1;
          desc.spec[12] = step;
          desc.spec[14] = push.K / 32 % 8;
          n_per = (guint64) desc.spec[0] * passes * desc.spec[5];
          if (!bind_rope (enc, dst, &push, &desc, bind, error))
            return FALSE;
        }
    }
  else
    bind[0] = at_encoder_bind (enc, a, FALSE, &push.oa, a->dtype == AT_DTYPE_F16 ? 2 : 4);
  if ((rms || dst->op == &matmul_swiglu_op || qa8 (dst)) && !own_rows)
    {
      /* The fused ops (and qa8) only where rows_kernel_takes said this kernel would run. */
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "%s: %s cannot take the matrix-vector rows kernel", dst->op->name, b->name);
      return FALSE;
    }
  if ((per_chunk = chunk_rows (enc, b, rb, push.sbn, n_per, texel, error)) == 0)
    return FALSE;
  /* RoPE's pairs of rows stay within a chunk. */
  if (rope && per_chunk < push.N && (per_chunk -= per_chunk % 2) == 0)
    {
      g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                   "matmul_rope_cache: two rows of %s exceed the binding limit", b->name);
      return FALSE;
    }
  /* Vector loads where every row of a starts aligned: 4 f32 elements, or 2 halves. */
  desc.spec[7] = (push.oa | push.sam | push.sa0 | push.sa1) % (a->dtype == AT_DTYPE_F16 ? 2 : 4) == 0;
  /* A texel view of f32 a is read four words a fetch only where it is RGBA32UI. */
  if (texel && a->dtype == AT_DTYPE_F32)
    desc.spec[7] = desc.spec[7] && bind[0].format == VK_FORMAT_R32G32B32A32_UINT;
  for (guint64 n0 = 0; n0 < push.N; n0 += per_chunk)
    {
      guint64 rows = MIN (per_chunk, push.N - n0);

      push.n0 = (guint32) n0;
      push.nrows = (guint32) rows;
      if (texel)
        {
          gsize first = n0 * push.sbn, n = rows == push.N ? 0 : (rows - 1) * push.sbn + rb;

          /* Rows that start at 16 bytes are read as RGBA32UI texels (B_RGBA): fewer fetches,
           * the main cost on lavapipe. Plain types, and (GROUP) q8_0 / q4_0 in groups of 8
           * blocks, q4_K super-blocks. */
          if (own_rows)
            {
              VkFormat format = b->dtype == AT_DTYPE_Q6_K ? VK_FORMAT_R32_UINT
                                                          : VK_FORMAT_R32G32B32A32_UINT;

              if (!at_encoder_bind_texel (enc, b, first, n, format, &bind[1], &push.ob, 1))
                {
                  g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED,
                               "matmul: %s does not fit a texel view", b->name);
                  return FALSE;
                }
              desc.spec[13] = push.ob % 16;
            }
          else if (!(!binfo->quantized || b->dtype == AT_DTYPE_Q4_K
                || ((b->dtype == AT_DTYPE_Q8_0 || b->dtype == AT_DTYPE_Q4_0) && push.K % 256 == 0))
              || !at_encoder_bind_texel (enc, b, first, n, VK_FORMAT_R32G32B32A32_UINT, &bind[1], &push.ob, 1)
              || (push.ob | push.sbn | push.sb0 | push.sb1) % 16 != 0)
            bind[1].format = VK_FORMAT_UNDEFINED;
          /* Checked above for a batched b; chunks fit by chunk_rows. */
          if (bind[1].format == VK_FORMAT_UNDEFINED
              && !at_encoder_bind_texel (enc, b, first, n, VK_FORMAT_R32_UINT, &bind[1], &push.ob, 1))
            {
              g_set_error (error, AT_ERROR, AT_ERROR_UNSUPPORTED, "matmul: %s does not fit a texel view",
                           b->name);
              return FALSE;
            }
        }
      else if (rows == push.N)
        bind[1] = at_encoder_bind (enc, b, FALSE, &push.ob, 1);
      else
        bind[1] = at_encoder_bind_range (enc, b, n0 * push.sbn, (rows - 1) * push.sbn + rb, FALSE,
                                         &push.ob, 1);
      /* Vector loads of plain b where every row starts 16 (f32) or 8 (f16, bf16) bytes aligned. */
      desc.spec[8] = !binfo->quantized
                     && (push.ob | push.sbn | push.sb0 | push.sb1) % (b->dtype == AT_DTYPE_F32 ? 16 : 8) == 0;
      desc.spec[11] = texel && bind[1].format == VK_FORMAT_R32G32B32A32_UINT;
      /* GROUP for quantised b only for a vector (token generation): its unrolled code is a
       * long JIT compile, not worth it for the rarer M = 2..4. Only matvec_texel has it: a
       * constant no other kernel reads would still make another pipeline, another compile
       * (6-14 s for the CPU GEMM on a Zen 3). */
      desc.spec[10] = g_str_equal (desc.shader, "matvec_texel") && desc.spec[11]
                      && (binfo->quantized ? push.M == 1 : b->dtype != AT_DTYPE_F32 && push.K % 8 == 0);
      if (!at_encoder_dispatch (enc, &desc, label, &push, bind, (guint32) ((rows + n_per - 1) / n_per),
                                (guint32) ((push.M + m_per - 1) / m_per), (guint32) n_batch, error))
        return FALSE;
    }
  return TRUE;
}

static const AtOp matmul_op = { "matmul", encode_matmul, ref_matmul };
static const AtOp matmul_add_op = { "matmul_add", encode_matmul, ref_matmul_add };
static const AtOp matmul_rms_op = { "matmul_rms", encode_matmul, ref_matmul_rms };
static const AtOp matmul_swiglu_op = { "matmul_swiglu", encode_matmul, ref_matmul_swiglu };
static const AtOp matmul_rope_op = { "matmul_rope_cache", encode_matmul, ref_matmul_rope };

/* ---- constructor ---- */

static gboolean
is_weight_dtype (AtDtype t)
{
  for (guint i = 0; i < G_N_ELEMENTS (weight_dtypes); i++)
    if (weight_dtypes[i] == t)
      return TRUE;
  return FALSE;
}

/* Checks a @ b^T; fills its shape (the last `ndim` of `shape`). FALSE (the graph failed)
 * when the sources don't fit. */
static gboolean
product_shape (AtGraph *g, const char *op, AtTensor *a, AtTensor *b, gint64 shape[4], int *ndim)
{
  gint64 as[4], ast[4], bs[4], bst[4];
  g_autofree char *da = at_tensor_describe (a), *db = at_tensor_describe (b);
  const AtDtypeInfo *binfo;

  if (a->dtype != AT_DTYPE_F32 && a->dtype != AT_DTYPE_F16)
    {
      at_graph_fail (g, op, "a must be f32 or f16 activations: %s", da);
      return FALSE;
    }
  if (!is_weight_dtype (b->dtype))
    {
      at_graph_fail (g, op, "b has an unsupported weight type: %s", db);
      return FALSE;
    }
  if (b->ndim < 2)
    {
      at_graph_fail (g, op, "b must be [..., N, K]: %s", db);
      return FALSE;
    }
  at_tensor_shape4 (a, as, ast);
  at_tensor_shape4 (b, bs, bst);
  binfo = at_dtype_info (b->dtype);
  if (as[3] != bs[3])
    {
      at_graph_fail (g, op, "K differs: a %s, b %s (a is [..., M, K], b [..., N, K])", da, db);
      return FALSE;
    }
  if (bs[3] % binfo->block_size != 0)
    {
      at_graph_fail (g, op, "K = %" G_GINT64_FORMAT " is not a multiple of %s's block of %u: %s",
                     bs[3], binfo->name, binfo->block_size, db);
      return FALSE;
    }
  if ((as[3] > 1 && ast[3] != 1) || (bs[3] > 1 && bst[3] != 1))
    {
      at_graph_fail (g, op, "K must be contiguous in a and b (use at_cont): %s, %s", da, db);
      return FALSE;
    }
  for (int i = 0; i < 2; i++)
    {
      if (as[i] == bs[i] || bs[i] == 1 || as[i] == 1 || as[i] % bs[i] == 0)
        shape[i] = MAX (as[i], bs[i]);
      else
        {
          at_graph_fail (g, op, "batch dimensions do not broadcast: %s, %s", da, db);
          return FALSE;
        }
    }
  shape[2] = as[2];
  shape[3] = bs[2];
  if (shape[0] * shape[1] * shape[2] * shape[3] >= G_MAXUINT32
      || as[0] * as[1] * as[2] * as[3] >= G_MAXUINT32)
    {
      at_graph_fail (g, op, "more than 2^32 elements: %s, %s", da, db);
      return FALSE;
    }
  *ndim = MAX (a->ndim, b->ndim);
  return TRUE;
}

static gboolean takes_qa8 (AtGraph *g, const AtTensor *a, const AtTensor *b);

AtTensor *
at_matmul (AtGraph *g, AtTensor *a, AtTensor *b)
{
  AtTensor *srcs[2] = { a, b };
  gint64 shape[4];
  int ndim;
  MatmulParams p = { 0 };

  if (a == NULL || b == NULL)
    return at_graph_new_node (g, &matmul_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (!product_shape (g, "matmul", a, b, shape, &ndim))
    return NULL;
  p.qa8 = takes_qa8 (g, a, b);
  return at_graph_new_node (g, &matmul_op, AT_DTYPE_F32, ndim, shape + 4 - ndim, srcs, 2, &p, sizeof p);
}

AtTensor *
at_matmul_add (AtGraph *g, AtTensor *a, AtTensor *b, AtTensor *c)
{
  AtTensor *srcs[3] = { a, b, c };
  g_autofree char *dc = NULL;
  gint64 shape[4];
  int ndim;
  MatmulParams p = { 0 };

  if (a == NULL || b == NULL || c == NULL)
    return at_graph_new_node (g, &matmul_add_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 3, NULL, 0);
  if (!product_shape (g, "matmul_add", a, b, shape, &ndim))
    return NULL;
  dc = at_tensor_describe (c);
  if (c->dtype != AT_DTYPE_F32)
    return at_graph_fail (g, "matmul_add", "c must be f32: %s", dc);
  if (c->ndim != ndim || memcmp (c->shape, shape + 4 - ndim, sizeof (gint64) * (gsize) ndim) != 0)
    return at_graph_fail (g, "matmul_add", "c must have the product's shape: %s", dc);
  if (!at_tensor_is_contiguous (c))
    return at_graph_fail (g, "matmul_add", "c must be contiguous: %s", dc);
  p.qa8 = takes_qa8 (g, a, b);
  return at_graph_new_node (g, &matmul_add_op, AT_DTYPE_F32, ndim, shape + 4 - ndim, srcs, 3, &p, sizeof p);
}

/* Whether encode_matmul will take the lanes-own-rows kernel (matvec_rows.comp) for a @ b^T,
 * as far as the graph can tell before binding: a CPU device with texel views, no forced path,
 * a contiguous f32 vector a (K a multiple of 4) at a 16-byte offset, an unbatched q8_0, q4_0,
 * q4_K or q6_K b. */
static gboolean
rows_kernel_takes (AtGraph *g, const AtTensor *a, const AtTensor *b)
{
  AtDevice *dev = at_graph_get_device (g);
  const char *force = g_getenv ("ATELIER_MATMUL_PATH");
  gint64 K = a->shape[a->ndim - 1];

  return at_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU
         && at_buffer_texel_support (dev, VK_FORMAT_R32_UINT, NULL, NULL)
         && (force == NULL || *force == '\0' || g_str_equal (force, "matvec-texel"))
         && a->dtype == AT_DTYPE_F32 && at_tensor_numel (a) == K && K % 4 == 0
         && at_tensor_is_contiguous (a) && (a->view_src == NULL || a->view_offset % 16 == 0)
         && (b->dtype == AT_DTYPE_Q8_0 || b->dtype == AT_DTYPE_Q4_0 || b->dtype == AT_DTYPE_Q4_K
             || b->dtype == AT_DTYPE_Q6_K)
         && at_tensor_numel (b) / b->shape[b->ndim - 1] == b->shape[b->ndim - 2];
}

/* q4_0, q8_0 and q4_K on the rows kernel quantise a to 8 bits (matvec_rows.comp's QA8): integer
 * products, as llama.cpp's CPU backend does it. ATELIER_MATMUL_QA8=0 keeps f32 activations. */
static gboolean
takes_qa8 (AtGraph *g, const AtTensor *a, const AtTensor *b)
{
  return (b->dtype == AT_DTYPE_Q4_0 || b->dtype == AT_DTYPE_Q8_0 || b->dtype == AT_DTYPE_Q4_K)
         && b->ndim >= 2 && rows_kernel_takes (g, a, b)
         && g_strcmp0 (g_getenv ("ATELIER_MATMUL_QA8"), "0") != 0;
}

gboolean
at_matmul_fuses (AtGraph *g, AtTensor *a, AtTensor *b)
{
  return a != NULL && b != NULL && b->ndim >= 2 && rows_kernel_takes (g, a, b);
}

/* product_shape, and the norm weight: f32 [K], contiguous. */
static gboolean
rms_shape (AtGraph *g, const char *op, AtTensor *a, AtTensor *weight, AtTensor *b, gint64 shape[4],
           int *ndim)
{
  g_autofree char *dw = NULL;

  if (!product_shape (g, op, a, b, shape, ndim))
    return FALSE;
  if (weight->dtype == AT_DTYPE_F32 && at_tensor_numel (weight) == a->shape[a->ndim - 1]
      && at_tensor_is_contiguous (weight))
    return TRUE;
  dw = at_tensor_describe (weight);
  at_graph_fail (g, op, "the norm weight must be f32 [K], contiguous: %s", dw);
  return FALSE;
}

AtTensor *
at_matmul_rms (AtGraph *g, AtTensor *a, AtTensor *weight, float eps, AtTensor *b)
{
  AtTensor *srcs[3] = { a, b, weight };
  MatmulParams p = { eps, FALSE };
  gint64 shape[4];
  int ndim;

  if (a == NULL || b == NULL || weight == NULL)
    return at_graph_new_node (g, &matmul_rms_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 3, NULL, 0);
  if (!rows_kernel_takes (g, a, b))
    return at_matmul (g, at_rms_norm (g, a, weight, eps), b);
  if (!rms_shape (g, "matmul_rms", a, weight, b, shape, &ndim))
    return NULL;
  p.qa8 = takes_qa8 (g, a, b);
  return at_graph_new_node (g, &matmul_rms_op, AT_DTYPE_F32, ndim, shape + 4 - ndim, srcs, 3, &p,
                            sizeof p);
}

AtTensor *
at_matmul_swiglu (AtGraph *g, AtTensor *a, AtTensor *b, AtTensor *c)
{
  AtTensor *srcs[3] = { a, b, c };
  gint64 shape[4] = { 1, 1, 1, 1 };
  int ndim;
  MatmulParams p = { 0 };

  if (a == NULL || b == NULL)
    return at_graph_new_node (g, &matmul_swiglu_op, AT_DTYPE_F32, 1, (gint64[]){ 1 }, srcs, 2, NULL, 0);
  if (b->ndim < 2 || !rows_kernel_takes (g, a, b) || a->shape[a->ndim - 1] != 2 * b->shape[b->ndim - 1])
    {
      AtTensor *h = at_glu (g, a, AT_GLU_SWIGLU);
      return c != NULL ? at_matmul_add (g, h, b, c) : at_matmul (g, h, b);
    }
  ndim = MAX (a->ndim, b->ndim);
  shape[3] = b->shape[b->ndim - 2];
  if (c != NULL && (c->dtype != AT_DTYPE_F32 || at_tensor_numel (c) != shape[3]
                    || !at_tensor_is_contiguous (c)))
    {
      g_autofree char *dc = at_tensor_describe (c);
      return at_graph_fail (g, "matmul_swiglu", "c must be f32, contiguous, of the product's %"
                            G_GINT64_FORMAT " elements: %s", shape[3], dc);
    }
  p.qa8 = takes_qa8 (g, a, b);
  return at_graph_new_node (g, &matmul_swiglu_op, AT_DTYPE_F32, ndim, shape + 4 - ndim, srcs,
                            c != NULL ? 3 : 2, &p, sizeof p);
}

AtTensor *
at_matmul_rope_cache (AtGraph *g, AtTensor *a, AtTensor *weight, float eps, AtTensor *b,
                      AtTensor *positions, int n_rot, float base, float freq_scale, AtRopeMode mode,
                      AtTensor *freq_factors, int n_q_heads, AtTensor *k_cache, AtTensor *v_cache)
{
  MatmulParams p = { eps, FALSE, n_rot, n_q_heads, 0, 0, base, freq_scale, 3, -1, 4, 5 };
  AtTensor *srcs[AT_MAX_SRC] = { a, b, weight, positions, k_cache, v_cache, freq_factors };
  AtTensor *qkv;
  g_autofree char *dx = NULL;
  gint64 nkv, hd, heads, shape[4];
  int ndim;

  if (a == NULL || b == NULL || weight == NULL || positions == NULL || k_cache == NULL
      || v_cache == NULL)
    return at_graph_failed (g) ? NULL
                               : at_graph_fail (g, "matmul_rope_cache", "a source is missing");
  if (k_cache->ndim != 3)
    {
      g_autofree char *dk = at_tensor_describe (k_cache);
      return at_graph_fail (g, "matmul_rope_cache", "the k cache %s must be [rows, kv heads, D]",
                            dk);
    }
  hd = k_cache->shape[2];
  heads = n_q_heads + 2 * k_cache->shape[1];
  if (b->ndim != 2 || b->shape[0] != heads * hd)
    {
      g_autofree char *db = at_tensor_describe (b), *dk = at_tensor_describe (k_cache);
      return at_graph_fail (g, "matmul_rope_cache",
                            "b %s must be [%" G_GINT64_FORMAT " rows, K]: %d q heads and the k and v"
                            " heads of the caches %s", db, heads * hd, n_q_heads, dk);
    }
  /* The fused kernel: normal RoPE of one token's heads, whole pairs of rows in each workgroup
   * (an even head dimension), else the two ops. */
  if (mode != AT_ROPE_NORMAL || !rows_kernel_takes (g, a, b) || hd % 2 != 0)
    {
      qkv = at_matmul_rms (g, a, weight, eps, b);
      if (qkv == NULL)
        return NULL;
      return at_rope_cache (g, at_reshape (g, qkv, 3, (gint64[]){ 1, heads, hd }),
                            positions, n_rot, base, freq_scale, mode, freq_factors, n_q_heads,
                            k_cache, v_cache);
    }
  dx = g_strdup_printf ("[1, %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (the product)", heads, hd);
  if (!at_rope_check (g, "matmul_rope_cache", dx, 1, hd, positions, n_rot, mode, freq_factors)
      || !at_rope_check_caches (g, "matmul_rope_cache", dx, heads, hd, n_q_heads, k_cache, v_cache,
                                &nkv)
      || !rms_shape (g, "matmul_rope_cache", a, weight, b, shape, &ndim))
    return NULL;
  p.qa8 = takes_qa8 (g, a, b);
  p.nkv = (gint32) nkv;
  p.hd = (gint32) hd;
  p.ff = freq_factors != NULL ? 6 : -1;
  qkv = at_graph_new_node (g, &matmul_rope_op, AT_DTYPE_F32, ndim, shape + 4 - ndim, srcs,
                           freq_factors != NULL ? 7 : 6, &p, sizeof p);
  return qkv != NULL ? at_reshape (g, qkv, 3, (gint64[]){ 1, heads, hd }) : NULL;
}
