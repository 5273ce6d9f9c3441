/* at-error.c: the engine's error domain. */
#include "at-error.h"

G_DEFINE_QUARK (at-error-quark, at_error)
