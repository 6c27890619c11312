#!/usr/bin/env bash
# Regenerates docs/results.md: every paper experiment at CPU scale (plus the fair, tuned judge for
# the experiments in TUNED), then the page. Finished runs in runs/ are kept, so re-running resumes.
# Measured: 77 min on 2 cores for the 11 experiments, plus 30 min for the three tuned ones.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
TUNED="${TUNED-rsgdm-cifar10-resnet18 tmsgd-cifar10-vgg16 wgd-cifar100-resnet18}"
names=$(optimlab reproduce --list | cut -d' ' -f1)
for name in $names; do
  flags=()
  if [[ " $TUNED " == *" $name "* ]]; then flags=(--tune); fi
  optimlab reproduce "$name" --scale cpu "${flags[@]}" "$@"
done
folders=()
for name in $names; do folders+=("runs/reproduce-$name-cpu"); done
python -m optimlab.reproduce.page "${folders[@]}" --out docs/results.md
