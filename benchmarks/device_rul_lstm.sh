#!/usr/bin/env bash
# LSTM baselines on a borrowed GPU machine, in one time-boxed call (session 22).
#
# The LSTM networks of the transformer-vs-LSTM comparison (benchmarks/rul_ensembles.py) take 11-66
# minutes each on one core of a 2-core CPU machine (the transformers 3-5): this trains what the
# comparison still lacks, many at once, on one GPU. Nothing in the product or in CI needs it.
#   * ensemble members (benchmarks/rul_ensembles.py --members i-i --variant V --accelerator gpu),
#     one process each, saved to /tmp/ckpt/<name>; they load on a CPU under the same key when the
#     data fingerprint there is the same (printed first, for every ensemble, to check);
#   * ablation seeds (benchmarks/rul_ablation.py, lock-claimed part files; rows record the device).
# Expects .devdata/cmapss.tgz (a tar of the C-MAPSS directory) and .whl/ (wheels of pydantic,
# pydantic-core, pydantic-settings, annotated-types, typing-inspection, typing-extensions and
# python-dotenv, which the machine's image lacks) in the working tree, both carried; writes to $OUT
# (default /tmp/out) parts.tgz (new part files, logs, fingerprints) and ckpt_<name>.tgz, refreshed
# every 30 s so that a cut-off call still returns what finished. Jobs run in the order listed; none
# starts after CLAIM_S seconds.
#
#   WORKERS=16 CLAIM_S=330 BUDGET_S=530 [JOBS=s22|fd002_st1|st1|fd004_abl_st1] bash benchmarks/device_rul_lstm.sh
set -u
START=$(date +%s)
OUT=${OUT:-/tmp/out}
WORKERS=${WORKERS:-16}
CLAIM_UNTIL=$((START + ${CLAIM_S:-330}))
STOP_AT=$((START + ${BUDGET_S:-530}))
DATA=/tmp/data/cmapss

. benchmarks/device_setup.sh
mkdir -p /tmp/ckpt

# JOBS=s22: what ran in session 22 (447 s on an H200); JOBS=fd002_st1 (the default): the FD002 LSTM on
# every training window, as the FD002 transformer trains since v11 (fairness; 5 splits + 5 members);
# JOBS=st1 (session 23, 386 s on an H200): that and the FD004 LSTM's 5 members on every window (15
# networks at once); JOBS=fd004_abl_st1 (session 23, 199 s): the FD004 LSTM on every window, 5 splits
JOBS=${JOBS:-fd002_st1}
# ensemble name -> subset and LSTM variant
declare -A ENS
if [ "$JOBS" = s22 ]; then
    ENS=(
        [FD003_h128_age]="FD003 L_w80_h128_age"
        [FD004_plus2_age]="FD004 L_w80_h128_plus2_age"
        [FD002_plus4_age_late15]="FD002 L_w80_h128_plus4_age_late15"
        [FD004_plus2_age_late15]="FD004 L_w80_h128_plus2_age_late15"
    )
elif [ "$JOBS" = fd002_st1 ]; then
    ENS=([FD002_plus4_age_st1]="FD002 L_w80_h128_plus4_age_st1")
else
    ENS=(
        [FD002_plus4_age_st1]="FD002 L_w80_h128_plus4_age_st1"
        [FD004_plus2_age_st1]="FD004 L_w80_h128_plus2_age_st1"
    )
fi
for name in "${!ENS[@]}"; do
    set -- ${ENS[$name]}
    python3 benchmarks/rul_ensembles.py --fingerprint --data-dir "$DATA" --subset "$1" --variant "$2" \
        >> /tmp/logs/fingerprints.jsonl 2>> /tmp/logs/fingerprints.err &
done  # (in the background, beside the jobs)

ens() {  # name member
    set -- "$1" "$2" ${ENS[$1]}
    echo "python3 benchmarks/rul_ensembles.py --data-dir $DATA --subset $3 --variant $4 --members $2-$2 --jobs 1 --threads 1 --accelerator gpu --checkpoint-dir /tmp/ckpt/$1 > /tmp/logs/ens_$1_m$2.log 2>&1"
}
abl() {  # subset variant tag  (one job claims one missing seed, then any other still missing)
    echo "python3 benchmarks/rul_ablation.py --data-dir $DATA --parts-dir /tmp/parts --seeds 5 --subset $1 --variant $2 --accelerator gpu --threads 1 --deadline $CLAIM_UNTIL > /tmp/logs/abl_$1_$2_$3.log 2>&1"
}
{
    if [ "$JOBS" = s22 ]; then
        for m in 0 1 2 3 4; do ens FD003_h128_age $m; done
        for t in a b c; do abl FD004 L_w80_h128_plus2_age $t; done
        for m in 0 1 2 3 4; do ens FD004_plus2_age $m; done
        for t in a b c d e; do abl FD002 L_w80_h128_plus4_age_late15 $t; done
        for t in a b c d e; do abl FD004 L_w80_h128_plus2_age_late15 $t; done
        for m in 0 1 2 3 4; do ens FD002_plus4_age_late15 $m; done
        for m in 0 1 2 3 4; do ens FD004_plus2_age_late15 $m; done
    elif [ "$JOBS" = fd004_abl_st1 ]; then
        for t in a b c d e; do abl FD004 L_w80_h128_plus2_age_st1 $t; done
    else
        for t in a b c d e; do abl FD002 L_w80_h128_plus4_age_st1 $t; done
        for m in 0 1 2 3 4; do ens FD002_plus4_age_st1 $m; done
    fi
    if [ "$JOBS" = st1 ]; then
        for m in 0 1 2 3 4; do ens FD004_plus2_age_st1 $m; done
    fi
} > /tmp/logs/jobs.txt

snapshot() {
    comm -13 /tmp/logs/parts_before.txt <(ls /tmp/parts | grep '\.json$' | sort) > /tmp/logs/new_parts.txt
    tar czf "$OUT/parts.tgz.tmp" -C /tmp logs $(sed 's#^#parts/#' /tmp/logs/new_parts.txt) 2>/dev/null \
        && mv "$OUT/parts.tgz.tmp" "$OUT/parts.tgz"
    for d in /tmp/ckpt/*/; do
        [ -d "$d" ] || continue
        n=$(basename "$d")
        tar czf "$OUT/ckpt_$n.tgz.tmp" -C /tmp/ckpt --exclude='.*' "$n" && mv "$OUT/ckpt_$n.tgz.tmp" "$OUT/ckpt_$n.tgz"
    done
}

export CLAIM_UNTIL
xargs -P "$WORKERS" -I{} -d '\n' bash -c '[ "$(date +%s)" -lt "$CLAIM_UNTIL" ] || exit 0; {}' < /tmp/logs/jobs.txt &
XARGS=$!
while [ "$(date +%s)" -lt "$STOP_AT" ] && kill -0 "$XARGS" 2>/dev/null; do
    sleep 30
    snapshot
    echo "$(( $(date +%s) - START )) s: $(wc -l < /tmp/logs/new_parts.txt) new parts, $(ls /tmp/ckpt/*/*.pt 2>/dev/null | wc -l) members"
done
pkill -f benchmarks/rul_ 2>/dev/null
sleep 2
snapshot
cat /tmp/logs/machine.txt /tmp/logs/fingerprints.jsonl
grep -h "val RMSE\|member_val_rmse" /tmp/logs/*.log | sort
grep -h -i -E "error|Traceback" /tmp/logs/*.log /tmp/logs/fingerprints.err | sort | uniq -c | head -20
echo "done in $(( $(date +%s) - START )) s"
