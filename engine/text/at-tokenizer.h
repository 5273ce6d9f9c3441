/* at-tokenizer.h: the tokenizers of GGUF language models, built from the file's
 * `tokenizer.ggml.*` metadata, encoding text to token ids and decoding ids back to text.
 *
 * Two models (`tokenizer.ggml.model`):
 * - "llama": SentencePiece-style BPE. Spaces become U+2581 "▁", a dummy space is put in front
 *   of the text (`tokenizer.ggml.add_space_prefix`, default on), adjacent pieces are merged
 *   highest score first, and characters the vocabulary lacks fall back to `<0xNN>` byte tokens.
 * - "gpt2": byte-level BPE. The text is split into words by the pre-tokenizer regex named by
 *   `tokenizer.ggml.pre` ("default", "gpt-2", "llama-bpe"/"llama3", "qwen2", "starcoder", and
 *   a few aliases), each word's bytes are mapped to GPT-2's printable alphabet, and pairs are
 *   merged lowest `tokenizer.ggml.merges` rank first.
 *
 * The ids match llama.cpp's tokenizer (src/llama-vocab.cpp) on its test-tokenizer-0 cases.
 * As there, the text of user-defined tokens is always split off as a single token before the
 * model runs; control and unknown tokens only when `parse_special` is set.
 *
 * Every problem in the metadata (a missing or mistyped key, counts that differ, an id out of
 * range, a merge that names no token) is an AT_ERROR_BAD_FILE naming the key; a tokenizer model
 * or pre-tokenizer Atelier lacks is AT_ERROR_UNSUPPORTED.
 */
#pragma once

#include "at-file-tensors.h"
#include "at-gguf.h"

G_BEGIN_DECLS

/* `tokenizer.ggml.token_type` values (llama.cpp's numbering). */
typedef enum
{
  AT_TOKEN_TYPE_UNDEFINED = 0,
  AT_TOKEN_TYPE_NORMAL = 1,
  AT_TOKEN_TYPE_UNKNOWN = 2,
  AT_TOKEN_TYPE_CONTROL = 3,
  AT_TOKEN_TYPE_USER_DEFINED = 4,
  AT_TOKEN_TYPE_UNUSED = 5,
  AT_TOKEN_TYPE_BYTE = 6,
} AtTokenType;

typedef enum
{
  AT_TOKENIZER_SPM, /* "llama" */
  AT_TOKENIZER_BPE, /* "gpt2" */
} AtTokenizerKind;

typedef struct _AtTokenizer AtTokenizer;

/* Reads the tokenizer from `g`'s metadata. Everything is copied: `g` may be freed after. */
AtTokenizer *at_tokenizer_new_from_gguf (AtGguf *g, GError **error);
void at_tokenizer_free (AtTokenizer *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtTokenizer, at_tokenizer_free)

AtTokenizerKind at_tokenizer_get_kind (AtTokenizer *t);
/* The `tokenizer.ggml.pre` value in use ("default" when absent). */
const char *at_tokenizer_get_pre (AtTokenizer *t);
guint at_tokenizer_get_n_tokens (AtTokenizer *t);
/* Special ids; -1 when the vocabulary has none. */
gint32 at_tokenizer_get_bos (AtTokenizer *t);
gint32 at_tokenizer_get_eos (AtTokenizer *t);
gint32 at_tokenizer_get_eot (AtTokenizer *t);
gint32 at_tokenizer_get_unk (AtTokenizer *t);
gint32 at_tokenizer_get_pad (AtTokenizer *t);
gboolean at_tokenizer_get_add_bos (AtTokenizer *t);
gboolean at_tokenizer_get_add_eos (AtTokenizer *t);
/* End of generation: EOS, EOT, EOM, and control tokens whose text is a known end-of-turn
 * marker ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", ...). FALSE
 * for an id out of range. */
gboolean at_tokenizer_is_eog (AtTokenizer *t, gint32 id);
/* The token's text as stored in the vocabulary (NUL-terminated, "▁"/"Ġ" alphabet and all);
 * `len` (may be NULL) gets its byte count. NULL for an id out of range. */
const char *at_tokenizer_get_token_text (AtTokenizer *t, gint32 id, gsize *len);
AtTokenType at_tokenizer_get_token_type (AtTokenizer *t, gint32 id);

/* Appends the token ids of `text` (`len` bytes, or NUL-terminated when -1) to `out_ids`, a
 * GArray of gint32. `add_special` puts BOS in front and EOS at the end as the vocabulary's
 * add_bos/add_eos flags say; `parse_special` turns the text of control tokens ("<|im_start|>")
 * into those tokens. Text that is not valid UTF-8, or holds a NUL byte, is AT_ERROR_INVALID
 * and nothing is appended. */
gboolean at_tokenizer_encode (AtTokenizer *t, const char *text, gssize len, gboolean add_special,
                              gboolean parse_special, GArray *out_ids, GError **error);

/* Appends the raw bytes token `id` stands for to `out`: "▁" turned back into a space, a byte
 * token's byte, a byte-level BPE token's bytes. These may be part of a UTF-8 sequence only.
 * Control and unknown tokens give their text, or nothing when `skip_special`. FALSE (nothing
 * appended) for an id out of range. No dummy-prefix removal: that is the detokenizer's job. */
gboolean at_tokenizer_decode_token (AtTokenizer *t, gint32 id, gboolean skip_special, GString *out);

/* The text of `n` ids: the detokenizer below run over all of them, then flushed. Always valid
 * UTF-8: bytes that form no character, and ids out of range, become U+FFFD. */
char *at_tokenizer_decode (AtTokenizer *t, const gint32 *ids, gsize n, gboolean skip_special);

/* Streaming decode for generation: feed ids one at a time, get back the text they completed.
 * Incomplete UTF-8 sequences (a character split over byte tokens or byte-level pieces) are held
 * back until completed; a sequence that can no longer complete becomes U+FFFD. For a "llama"
 * tokenizer with the space prefix, the one leading space of the first text token is dropped
 * (control tokens such as BOS before it do not count). The detokenizer borrows `t`. */
typedef struct _AtDetokenizer AtDetokenizer;

AtDetokenizer *at_detokenizer_new (AtTokenizer *t, gboolean skip_special);
void at_detokenizer_free (AtDetokenizer *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtDetokenizer, at_detokenizer_free)
/* The newly completed text (valid UTF-8, possibly ""); free with g_free. */
char *at_detokenizer_feed (AtDetokenizer *d, gint32 id);
/* What is still held back (an incomplete sequence becomes U+FFFD); the detokenizer then
 * starts afresh, as at the beginning of a text. */
char *at_detokenizer_flush (AtDetokenizer *d);

G_END_DECLS
