/* fuzz-pickle.c: raw bytes into the restricted unpickler, with a storage callback that accepts
 * every persistent id; then a walk over everything it built. */
#include "at-engine.h"

int LLVMFuzzerTestOneInput (const guint8 *data, gsize size);

static gpointer
accept_storage (gpointer user_data, const char *key, AtFileDtype dtype, guint64 numel, GError **error)
{
  return user_data;
}

/* Bounded walk: shared containers may make the graph exponential. */
static void
visit (const AtPyObject *o, int depth, guint *budget)
{
  if (*budget == 0 || depth > AT_FILE_MAX_NESTING)
    return;
  (*budget)--;
  switch (o->type)
    {
    case AT_PY_STR:
    case AT_PY_BYTES:
      g_assert_true (o->v.str.data[o->v.str.len] == '\0');
      break;
    case AT_PY_TUPLE:
    case AT_PY_LIST:
    case AT_PY_DICT:
      for (gsize i = 0; i < o->v.seq.len && *budget > 0; i++)
        visit (o->v.seq.items[i], depth + 1, budget);
      break;
    case AT_PY_TENSOR:
      g_assert_true (o->v.tensor->ndim >= 0 && o->v.tensor->ndim <= AT_FILE_MAX_DIMS);
      break;
    default:
      break;
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, gsize size)
{
  static int dummy;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtPickle) pickle = at_pickle_load (data, size, "fuzz.pkl", accept_storage, &dummy, &error);
  guint budget = 10000;

  if (pickle == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  visit (at_pickle_get_root (pickle), 0, &budget);
  return 0;
}
