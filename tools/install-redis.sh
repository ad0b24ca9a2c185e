#!/usr/bin/env bash
# The real servers tests/test_cache_servers.py starts the rendered cache config with: Debian's redis-server and
# redis-sentinel (Redis 7.0 on bookworm; the Valkey the cache deploys is its fork, README "Caches" says where they
# differ). `make test` runs this before the suite; it installs only what is missing (apt-get needs root, as on CI).
#
#   tools/install-redis.sh        install redis-server and redis-sentinel unless both are on PATH
set -euo pipefail

if command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null; then
  exit 0
fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || { echo "tools/install-redis.sh: installing redis-server needs root (or sudo)" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# --no-install-recommends: no service is started or enabled beyond the packages' own units, which the tests never use.
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server redis-sentinel >/dev/null
