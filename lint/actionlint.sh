#!/usr/bin/env bash
# actionlint over .github/workflows, for `make lint`. Built from its Go module (as e2e/toolchain.sh builds the
# e2e toolchain) into ${PLATFORM_LINT_CACHE:-$HOME/.cache/platform-lint}/actionlint-<version>/, outside the work
# tree; built only when missing. actionlint also runs shellcheck over `run:` scripts when shellcheck is on PATH.
#
#   lint/actionlint.sh              lint every workflow
#   lint/actionlint.sh FILE...      lint these files (other actionlint flags pass through)
set -euo pipefail

ACTIONLINT_VERSION=v1.7.12
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${PLATFORM_LINT_CACHE:-$HOME/.cache/platform-lint}/actionlint-$ACTIONLINT_VERSION"

if [[ ! -x "$BIN/actionlint" ]]; then
  echo "build  actionlint $ACTIONLINT_VERSION into $BIN" >&2
  mkdir -p "$BIN"
  # The proxy is whatever GOPROXY says. actionlint needs Go 1.25+; an older local Go fetches a newer toolchain
  # by itself unless GOTOOLCHAIN=local (then set e.g. GOTOOLCHAIN=go1.27.3).
  CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$BIN" \
    go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

cd "$ROOT"
exec "$BIN/actionlint" "$@"
