#!/usr/bin/env bash
# Regenerates docs/results.md: every paper experiment at CPU scale (plus the fair, tuned judge for the
# experiments in TUNED), then the page, which re-judges every folder and rewrites its verdict.md.
# JUDGE_ONLY=1 skips the runs (no training): it only re-judges the committed runs and rewrites the pages. Run folders live in results/ and their result files are committed
# (checkpoints and figures are not), so a regeneration resumes across machines and sessions: finished runs
# are kept. Pass NAMES="a b" to regenerate some experiments only; the page is built from every folder there.
# Measured at 10 seeds on 2 busy cores: about 20-30 min per experiment (rsgdm/tmsgd/wgd ResNet18), more
# for ResNet50/DenseNet121; --tune adds 2.5-6x an experiment's runs (3 tuning seeds x the lr grid).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
TUNED="${TUNED-rsgdm-cifar10-resnet18 tmsgd-cifar10-vgg16 wgd-cifar100-resnet18}"
names="${NAMES:-$(optimlab reproduce --list | cut -d' ' -f1)}"
[[ "${JUDGE_ONLY:-}" == 1 ]] && names=""
for name in $names; do
  flags=()
  if [[ " $TUNED " == *" $name "* ]]; then flags=(--tune); fi
  optimlab reproduce "$name" --scale cpu --out "results/reproduce-$name-cpu" "${flags[@]}" "$@"
done
python -m optimlab.reproduce.page results/reproduce-*-cpu --out docs/results.md
