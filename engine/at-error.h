/* at-error.h: the engine's error domain.
 *
 * Every failure the engine can meet (a missing Vulkan loader, no device, a VkResult from the
 * driver, a shape that doesn't fit an op) becomes a GError in AT_ERROR with one of these codes
 * and a message that says what is wrong and what to do. Nothing in the engine aborts on a value
 * that came from a file, a user or a driver.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define AT_ERROR (at_error_quark ())

typedef enum
{
  AT_ERROR_FAILED,            /* anything else */
  AT_ERROR_NO_VULKAN,         /* no Vulkan loader (libvulkan.so.1) or no instance */
  AT_ERROR_NO_DEVICE,         /* no physical device, or ATELIER_DEVICE named none */
  AT_ERROR_OUT_OF_DEVICE_MEMORY,
  AT_ERROR_OUT_OF_HOST_MEMORY,
  AT_ERROR_DEVICE_LOST,
  AT_ERROR_VULKAN,            /* any other VkResult failure */
  AT_ERROR_SHADER,            /* an embedded shader is missing or failed to build */
  AT_ERROR_SHAPE,             /* tensors whose shapes or dtypes don't fit the op */
  AT_ERROR_UNSUPPORTED,       /* valid, but not supported on this device or dtype */
  AT_ERROR_INVALID,           /* a bad argument from the caller */
  AT_ERROR_CANCELLED,
  AT_ERROR_BAD_FILE,           /* a file that is truncated, corrupt, hostile or not what it claims */
} AtErrorCode;

GQuark at_error_quark (void);

G_END_DECLS
