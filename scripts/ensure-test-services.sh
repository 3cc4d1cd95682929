#!/usr/bin/env bash
# What the tests need beyond npm packages: redis-server (Debian package), which the queue tests of
# `fewshot reproduce` start and stop themselves on a free localhost port. Installed here when missing,
# so `npm ci && npm test` works on a fresh Debian/Ubuntu machine; elsewhere it says what to install.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing redis-server (needed by the reproduce queue tests)" >&2
  (apt-get install -y -qq redis-server >/dev/null 2>&1) || (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null)
  exit 0
fi
echo "error: redis-server is not installed; the reproduce queue tests start one on localhost" >&2
echo "  fix: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and run the tests again" >&2
exit 2
