#!/usr/bin/env bash
# The test suite, as CI runs it. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec python -m pytest -n 2 -q "$@"
