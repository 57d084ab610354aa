#!/usr/bin/env bash
# GPU smoke check with real weights (never downloads): tiny-model tests on CUDA, then
# time and peak VRAM of 81 frames at 480p, charanim vs diffusers' own Wan-Animate pipeline.
#
#   WAN_ANIMATE_DIR=~/models/Wan2.2-Animate-14B-Diffusers bash benchmarks/gpu_smoke.sh [--offload model]
#
# Without WAN_ANIMATE_DIR only the CUDA checks run.
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device"
print("cuda:", torch.cuda.get_device_name(), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
PY
# the embedded model and the tiny Wan families end to end on the GPU
python -m pytest -q tests/test_wan_animate.py tests/test_speed_options.py -k "not offload_calls" -p no:cacheprovider
charanim animate examples/reference.png examples/driving.mp4 -o /tmp/charanim-gpu-smoke.mp4 \
  --model charanim-tiny --pose examples/driving.keypoints.jsonl --reference-pose examples/reference.keypoints.jsonl --device cuda --json
# context parallelism (--parallel ulysses) over the first two GPUs vs one process
if (( $(python -c "import torch; print(torch.cuda.device_count())") >= 2 )); then
  python -m pytest -q tests/test_parallel.py -p no:cacheprovider
fi
if [[ -n "${WAN_ANIMATE_DIR:-}" ]]; then
  python benchmarks/gpu_smoke.py --model "$WAN_ANIMATE_DIR" --frames 81 --size 832x480 "$@"
fi
