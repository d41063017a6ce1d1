#!/usr/bin/env bash
# `ainit check` time against an anchor measured in the same run: Python's
# yaml.safe_load over the same files (the parse alone, none of the checks).
# Prints each mean and the ratio check/anchor (below 1 = faster than parsing
# with PyYAML). Target (issue 5): `ainit check configs/mainpc.yaml` < 5 ms.
#   bench/check.sh [AINIT]      default build/ainit; RUNS=N (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
AINIT=${1:-build/ainit}
RUNS=${RUNS:-200}
SEED=${AINIT_SEED_ERA:-../shared/fixtures/seed-era}
command -v hyperfine >/dev/null || { echo "bench/check.sh: hyperfine not installed (mk/deps.sh)"; exit 77; }
[ -x "$AINIT" ] || { echo "bench/check.sh: $AINIT not built (make)"; exit 77; }
PY=/usr/bin/python3
tmp=$(mktemp -d)
n=0
trap 'rm -rf "$tmp"' EXIT

bench() { # name, files...
	local name=$1; shift
	local out="$tmp/$((++n)).json"
	hyperfine -N -i --warmup 20 --runs "$RUNS" --export-json "$out" \
		-n "ainit check" "$AINIT check $*" \
		-n "yaml.safe_load" "$PY -c \"import yaml,sys; [yaml.safe_load(open(f)) for f in sys.argv[1:]]\" $*" \
		>/dev/null 2>&1 || true
	$PY - "$out" "$name" <<'PYEOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
c, a = r["ainit check"], r["yaml.safe_load"]
print(f"{sys.argv[2]:<28} ainit check {c['mean']*1e3:7.2f} ms (±{c['stddev']*1e3:.2f}, median {c['median']*1e3:.2f})"
      f"   yaml.safe_load {a['mean']*1e3:7.2f} ms   ratio {c['mean']/a['mean']:.3f}")
PYEOF
}

bench "configs/mainpc.yaml" configs/mainpc.yaml
bench "configs (both machines)" configs/mainpc.yaml configs/pc2.yaml
if [ -d "$SEED" ]; then
	bench "seed-era (6 legacy files)" "$SEED"/mainpc/*.yaml "$SEED"/pc2/*.yaml "$SEED"/mainpc-later/*.yaml
fi
