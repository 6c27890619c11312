#!/usr/bin/env bash
# CI's plugin check: install examples/plugin into this environment, compare its optimizer (and
# wgd-<it>) on its model against sgdm on digits, check the output, uninstall. Needs only the CPU.
# PYTHON picks the interpreter (default: python of the active environment).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python}
out=$(mktemp -d)
cleanup() {
    "$PY" -m pip uninstall -y -q optimlab-example-plugin >/dev/null 2>&1 || true
    rm -rf "$out" examples/plugin/build examples/plugin/src/*.egg-info
}
trap cleanup EXIT
# --no-deps: optimlab and torch are there already (never let pip resolve another torch); without
# build isolation when this environment's setuptools builds wheels, else pip fetches one to build with
"$PY" -m pip install -q --no-deps --no-build-isolation ./examples/plugin 2>/dev/null \
    || "$PY" -m pip install -q --no-deps ./examples/plugin
"$PY" -m optimlab.cli list optimizers >"$out/list.txt"
grep -q "signum" "$out/list.txt" || { echo "plugin_check: optimlab list does not show signum" >&2; exit 1; }
grep -q "optimlab-example-plugin" "$out/list.txt" || { echo "plugin_check: no plugin origin in optimlab list" >&2; exit 1; }
OMP_NUM_THREADS=1 "$PY" -m optimlab.cli compare --dataset digits --model tinycnn \
    --optimizers sgdm:lr=0.05 signum:lr=0.01 wgd-signum:lr=0.01 \
    --seeds 2 --epochs 1 --batch-size 64 --max-steps-per-epoch 5 --workers 1 --quiet --out "$out/cmp" >"$out/table.txt"
runs=$(ls "$out/cmp/runs/"*.json | wc -l)
[ "$runs" -eq 6 ] || { echo "plugin_check: expected 6 run files, got $runs" >&2; exit 1; }
for label in signum wgd-signum; do
    grep -q "digits-tinycnn-$label-s1" <(ls "$out/cmp/runs") || { echo "plugin_check: no run of $label" >&2; exit 1; }
    grep -q "$label" "$out/cmp/report.md" || { echo "plugin_check: report.md does not name $label" >&2; exit 1; }
done
"$PY" -m pip uninstall -y -q optimlab-example-plugin
if "$PY" -m optimlab.cli list optimizers | grep -q "signum"; then
    echo "plugin_check: signum still listed after uninstall" >&2; exit 1
fi
echo "plugin_check: ok (signum and wgd-signum compared over 2 seeds on tinycnn, uninstalled)"
