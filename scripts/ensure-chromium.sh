#!/usr/bin/env bash
# Makes sure Debian's chromium is at /usr/bin/chromium: the browser tests
# (integration/browser_test.go) drive it headlessly through chromedp.
# Never a browser that downloads itself: the Debian package only.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x /usr/bin/chromium ]; then exit 0; fi

echo "chromium is not installed: installing it with apt-get (for the browser login tests)" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "apt-get installed chromium, but /usr/bin/chromium is missing" >&2; exit 1; }
