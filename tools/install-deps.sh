#!/bin/sh
# The one list of Debian 12 packages Atelier needs. README.md's two commands and .ci/run
# call this script; add a package here and nowhere else.
#   tools/install-deps.sh          build + run the app
#   tools/install-deps.sh --test   also what the test suite needs (Xvfb, validation layers, ...)
set -eu

build="meson ninja-build pkg-config gcc glslc libglib2.0-dev libglib2.0-bin
  libvulkan-dev mesa-vulkan-drivers libgtk-4-dev libadwaita-1-dev libgtksourceview-5-dev libjson-glib-dev libzip-dev
  libsqlite3-dev
  gettext desktop-file-utils appstream"
test="xvfb xauth dbus-x11 xdotool vulkan-tools vulkan-validationlayers clang
  libclang-rt-14-dev python3-numpy python3-torch python3-jinja2 libopenblas0-pthread"

pkgs="$build"
if [ "${1:-}" = "--test" ]; then
  pkgs="$build $test"
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $pkgs
