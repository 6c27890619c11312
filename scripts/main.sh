#!/usr/bin/env bash
# The main job on the embedded default. Extra arguments are passed on.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec optimlab compare "$@"
