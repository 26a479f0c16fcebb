# Sourced by the GPU-machine runners (benchmarks/device_rul_*.sh): the machine's image has torch and
# Lightning but not pydantic, and nothing can be fetched there. Installs the carried wheels (.whl/),
# sets the environment, unpacks the carried C-MAPSS tarball (.devdata/cmapss.tgz) to /tmp/data, copies
# the committed ablation parts (their archive, then any newer ones in rul_ablation_parts/) to /tmp/parts
# (so a worker claims only missing runs) and records the machine in /tmp/logs/machine.txt.
mkdir -p "$OUT" /tmp/data /tmp/parts /tmp/logs
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
export CUBLAS_WORKSPACE_CONFIG=:4096:8 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
tar xzf .devdata/cmapss.tgz -C /tmp/data
python3 -c "import json,pathlib; [pathlib.Path('/tmp/parts', e['name']).write_text(e['text']) for e in map(json.loads, open('benchmarks/results/archive/rul_ablation_parts.jsonl'))]"
cp benchmarks/results/rul_ablation_parts/*.json /tmp/parts/ 2>/dev/null || true
ls /tmp/parts | sort > /tmp/logs/parts_before.txt
{
    nvidia-smi -L
    python3 -c 'import torch, pytorch_lightning as pl, numpy, sklearn, pandas; print(torch.__version__, pl.__version__, numpy.__version__, sklearn.__version__, pandas.__version__)'
    nproc
} > /tmp/logs/machine.txt 2>&1
