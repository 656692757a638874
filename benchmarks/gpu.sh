#!/usr/bin/env bash
# Measure ragls' contextual tier on an NVIDIA GPU: texts/s on the GPU vs the CPU, and the time to
# index the 10,000-file repository completely. Run from the checkout on a CUDA machine:
#     bash benchmarks/gpu.sh
# It builds its own virtual environment (.venv-gpu) with a CUDA build of torch and faiss-gpu.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-gpu
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this script needs an NVIDIA GPU and driver" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# The default torch wheel on PyPI for Linux is the CUDA build.
"$VENV/bin/pip" install -q torch
# Without the llama extra: the GPU benchmark measures embeddings only.
"$VENV/bin/pip" install -q -e '.[gpu]'
# faiss-cpu and faiss-gpu install the same module; keep only the GPU build.
"$VENV/bin/pip" uninstall -q -y faiss-cpu
"$VENV/bin/pip" install -q --force-reinstall --no-deps 'faiss-gpu-cu12>=1.8'
"$VENV/bin/python" -c "import torch, faiss; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| faiss GPUs', faiss.get_num_gpus())"
"$VENV/bin/python" -m benchmarks.gpu
