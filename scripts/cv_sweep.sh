#!/usr/bin/env bash
# Cross-validation variants side by side, for a machine with many cores and a GPU.
#
#   scripts/cv_sweep.sh VARIANTS OUT DEADLINE_S [crossval options for every variant...]
#
# Each non-empty line of VARIANTS is "name [crossval options...]" (shell quoting), e.g.
#   hard50 --set 'tile_options={samples_per_epoch: 128, hard_background: 0.5}'
# Every variant runs `scratchdet crossval configs/cpu_fast.yaml --out OUT/<name>`, PARALLEL of
# them at once (default 4) in file order, each logging to OUT/<name>.log. Variants still running
# after DEADLINE_S seconds are stopped; later ones are not started. The headline table of every
# finished variant (crossval.json, eval/metrics.json) goes to OUT/summary.txt.
set -u
variants=$1 out=$2 deadline=$3
shift 3
python=${PYTHON:-python3}
mkdir -p "$out"
parallel=${PARALLEL:-4}
end=$((SECONDS + deadline))
while read -r name rest; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  while (($(jobs -rp | wc -l) >= parallel)) && ((SECONDS < end)); do sleep 2; done
  ((SECONDS < end)) || break
  eval "args=($rest)"
  setsid "$python" -m scratchdet crossval configs/cpu_fast.yaml --out "$out/$name" "${args[@]}" "$@" \
    >"$out/$name.log" 2>&1 &
  echo "started $name (pid $!) at ${SECONDS}s"
done <"$variants"
while ((SECONDS < end)) && [[ -n "$(jobs -rp)" ]]; do sleep 5; done
for pid in $(jobs -rp); do echo "deadline: stopping pid $pid"; kill -TERM -- "-$pid"; done
wait
"$python" - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
keys = ["oof_AP50_all", "oof_AP50_white", "oof_AP50_red", "oof_AP_all"]
print(f"{'variant':16s} " + " ".join(f"{k[4:]:>13s}" for k in keys) + "  AUROC  fold minutes")
for d in sorted(p for p in out.iterdir() if p.is_dir()):
    f = d / "crossval.json"
    if not f.is_file():
        print(f"{d.name:16s} (not finished)")
        continue
    cv = json.loads(f.read_text())
    head = cv["headline"]
    part = json.loads((d / "eval" / "metrics.json").read_text())["part_level"]["groups"]
    auroc = part["all"]["auroc"] if part["all"]["auroc"] is not None else float("nan")
    mins = " ".join(f"{x['train_minutes']:.1f}" for x in cv["folds"])
    print(f"{d.name:16s} " + " ".join(f"{head.get(k, float('nan')):13.3f}" for k in keys)
          + f"  {auroc:.3f}  {mins}")
PY
