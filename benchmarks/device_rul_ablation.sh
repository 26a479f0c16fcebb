#!/usr/bin/env bash
# The RUL ablation (benchmarks/rul_ablation.py) on a borrowed GPU machine, in one time-boxed call.
#
# Nothing in the product or in CI needs this: it only runs the same resumable, lock-claimed
# ablation with many workers at once. Ran once on an H100 (2026-11-28: 85 runs in 474 + 163 s, two
# calls; the second finished the seeds the first's deadline left); its CPU fallback was checked on a
# CPU-only machine. Expects, in the working tree:
#   .devdata/cmapss.tgz  the C-MAPSS directory (tar of shared/datasets/cmapss)
#   .whl/                wheels of what the machine lacks (pydantic and its needs), optional
# and writes to $OUT (default /tmp/out): parts.tgz (new part files + worker logs), refreshed
# every 30 s so a cut-off call still returns what finished.
#
#   WORKERS=14 CLAIM_S=400 BUDGET_S=540 bash benchmarks/device_rul_ablation.sh
set -u
START=$(date +%s)
OUT=${OUT:-/tmp/out}
WORKERS=${WORKERS:-14}
CLAIM_UNTIL=$((START + ${CLAIM_S:-400}))
STOP_AT=$((START + ${BUDGET_S:-540}))
SUBSETS="--subset FD001 --subset FD002 --subset FD003 --subset FD004"
# first the headline pair at 80 cycles, then the probes (a worker moves on when nothing is left)
STAGE1="--variant T_w80 --variant L_w80"
STAGE2="--variant T_w80_d64 --variant T_w80_L3 --variant T_w80_p4 --variant L_w80_h128"

. benchmarks/device_setup.sh

# smoke: one epoch of each deep model on the GPU; fall back to CPU workers if it fails
ACC=gpu
python3 - > /tmp/logs/smoke.txt 2>&1 <<'EOF' || ACC=cpu
import numpy as np
from models.lstm import LSTMRUL
from models.transformer import TransformerRUL
rng = np.random.default_rng(0)
X, y = rng.normal(size=(256, 14, 80)).astype("float32"), rng.uniform(0, 125, 256).astype("float32")
for est in (TransformerRUL(patch_len=8, max_epochs=1, accelerator="gpu"), LSTMRUL(max_epochs=1, accelerator="gpu")):
    est.fit(X, y, X_val=X[:64], y_val=y[:64])
    assert np.isfinite(est.predict(X[:8])).all()
print("gpu smoke ok")
EOF
echo "accelerator: $ACC (smoke $(( $(date +%s) - START )) s)" | tee -a /tmp/logs/machine.txt
[ "$ACC" = cpu ] && WORKERS=$(nproc)

snapshot() {
    comm -13 /tmp/logs/parts_before.txt <(ls /tmp/parts | grep '\.json$' | sort) > /tmp/logs/new_parts.txt
    tar czf "$OUT/parts.tgz.tmp" -C /tmp logs $(sed 's#^#parts/#' /tmp/logs/new_parts.txt) 2>/dev/null \
        && mv "$OUT/parts.tgz.tmp" "$OUT/parts.tgz"
}

ablation() {
    python3 benchmarks/rul_ablation.py --data-dir /tmp/data/cmapss --parts-dir /tmp/parts --seeds 5 $SUBSETS \
        --accelerator "$ACC" --deadline "$CLAIM_UNTIL" "$@"
}

for i in $(seq 1 "$WORKERS"); do
    ( ablation $STAGE1; ablation $STAGE2 ) > "/tmp/logs/w$i.log" 2>&1 &
    sleep 1
done

while [ "$(date +%s)" -lt "$STOP_AT" ] && [ -n "$(jobs -rp)" ]; do
    sleep 30
    snapshot
    echo "$(( $(date +%s) - START )) s: $(wc -l < /tmp/logs/new_parts.txt) new parts"
done
pkill -f benchmarks/rul_ablation.py 2>/dev/null
sleep 2
snapshot
grep -h "val RMSE" /tmp/logs/w*.log | sort
grep -h -i -E "error|Traceback" /tmp/logs/w*.log | sort | uniq -c | head -20
python3 benchmarks/rul_ablation.py --parts-dir /tmp/parts --merge --out /tmp/logs/merged.json | grep -E "w80"
echo "done in $(( $(date +%s) - START )) s"
