#!/bin/sh
# Build and run the whole test suite (README's second command; .ci/run runs this too).
# Under Xvfb and a private D-Bus session, so the window's tests run without a display.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-_build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build"
fi
meson compile -C "$build"
exec xvfb-run -a -s "-screen 0 1280x1024x24" dbus-run-session -- \
  meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
