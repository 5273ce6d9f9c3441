/* atelier-diff.h: what a proposal changes in the original, word by word, for the assistant's
 * "shown as a change" view: a list of runs, each kept, inserted or deleted, that joined in
 * order give back both texts (kept + deleted runs = the original, kept + inserted = the
 * proposal). Words here are runs of letters/digits, runs of spaces, and single other
 * characters (punctuation), so a changed comma shows as one. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ATELIER_DIFF_KEEP,
  ATELIER_DIFF_INSERT,
  ATELIER_DIFF_DELETE,
} AtelierDiffOp;

typedef struct
{
  AtelierDiffOp op;
  char *text; /* UTF-8, never empty */
} AtelierDiffRun;

/* GPtrArray of AtelierDiffRun (freed with the array). Adjacent runs of the same op are merged;
 * a deletion comes before the insertion that replaces it. Inputs of any length: beyond what
 * an exact diff can afford (more than about 4 million word pairs) the common prefix and suffix
 * are kept and the middle is shown as deleted then inserted. */
GPtrArray *atelier_diff_words (const char *original, const char *proposal);

G_END_DECLS
