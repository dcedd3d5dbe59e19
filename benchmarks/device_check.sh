#!/usr/bin/env bash
# The GPU checks of pgtorchrl as one command, for a GPU machine whose python3 (3.12) has a CUDA
# build of torch but not TorchRL, TensorDict, gymnasium, pydantic or MLflow:
#
#   bash benchmarks/device_check.sh prepare   # on a machine with pip: their cp312 wheels into .whl/
#   bash benchmarks/device_check.sh run       # on the GPU machine, with .whl/ beside it
#
# `run` installs the wheels into /tmp/site (no network needed), then, logging to $OUT (or /tmp):
#   1. the CUDA tests (tests/test_device.py: every stage on the GPU, a training run tracked in MLflow);
#   2. vpg_cartpole_torch.yaml end to end with device=cuda (8 envs: the CPU pipeline's settings);
#   3. the same pipeline at GPU scale (262,144 envs x 16 steps a batch): its frames/s;
#   4. benchmarks/throughput.py --device cuda at 65,536, 262,144 and 1,048,576 envs;
#   5. ppo_atari_pong.yaml (CleanRL's Atari PPO, 8 envs) with device=cuda for 131,072 frames: its frames/s
#      (where the machine has OpenCV: its wheel is too large to carry).
# On the team's GPU machine, in the device tool: `bash benchmarks/device_check.sh run` with carry [".whl"].
set -euo pipefail
cd "$(dirname "$0")/.."

# What pgtorchrl needs that the GPU machine's image lacks (its pip list: torch, numpy, pyyaml, tqdm,
# matplotlib, pytest, hypothesis, pandas, ... are there). The versions are constraints.txt's.
CORE=(torchrl==0.14.1 tensordict==0.14.3 pyvers==0.2.3 hoptorch==0.1.4 importlib-metadata==9.1.0
      gymnasium==1.4.0 farama-notifications==0.0.6 pydantic==2.14.4 pydantic-core==2.50.5
      annotated-types==0.8.0 typing-inspection==0.4.5)
MLFLOW=(mlflow==3.17.2 mlflow-skinny==3.17.2 mlflow-tracing==3.17.2 cachetools==7.3.3 databricks-sdk==0.162.0
        google-auth==2.63.0 pyasn1-modules==0.4.2 pyasn1==0.6.5 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
        fastapi==0.165.0 starlette==1.10.0 opentelemetry-api==1.45.2 opentelemetry-proto==1.45.2
        opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2 gitpython==3.2.1 gitdb==4.0.12
        smmap==5.0.3 python-dotenv==1.2.4 sqlparse==0.6.1 uvicorn==0.54.0 flask==3.1.3 flask-cors==6.0.5
        blinker==1.9.0 itsdangerous==2.2.0 alembic==1.20.1 sqlalchemy==2.1.9 mako==1.4.3 docker==7.2.0
        graphene==3.4.3 graphql-core==3.2.14 graphql-relay==3.2.0 gunicorn==26.2.0 huey==3.5.4 skops==0.16.0
        prettytable==3.18.0 wcwidth==0.9.4)
ATARI=(ale-py==0.12.1)  # the atari extra but OpenCV, whose 64 MB wheel alone fills the device tool's carry

prepare() {
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  local platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 \
           manylinux_2_34_x86_64 manylinux_2_35_x86_64 manylinux_2_31_x86_64 manylinux_2_24_x86_64 any; do
    platforms+=(--platform "$p")
  done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${CORE[@]}" "${MLFLOW[@]}" "${ATARI[@]}"
  du -sh .whl
}

run() {
  local out=${OUT:-/tmp/device_check} log
  mkdir -p "$out"
  log=$out/device_check.log
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 MLFLOW_TRACKING_URI=sqlite:////tmp/device_check.db
  {
    set +e  # a failed step is reported and the next one still runs: one call to the GPU machine tells all
    nvidia-smi -L
    python3 -c 'import torch, torchrl, tensordict; print("torch", torch.__version__, "torchrl", torchrl.__version__, "tensordict", tensordict.__version__, "cuda", torch.cuda.is_available())'
    echo "== 1. CUDA tests"
    python3 -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_torch_cartpole.py tests/test_native_envs.py
    echo "== 2. vpg_cartpole_torch.yaml, device=cuda"
    time python3 -m pgtorchrl pipelines/vpg_cartpole_torch.yaml device=cuda  # the whole process
    echo "== 3. the same at GPU scale: 262144 envs x 16 steps a batch, 20 batches"
    python3 -m pgtorchrl pipelines/vpg_cartpole_torch.yaml device=cuda env.num_envs=262144 \
      collector.frames_per_batch=4194304 train.total_frames=83886080 eval.every_frames=null eval.target_return=null \
      tracking.checkpoint_every_frames=41943040 | tee /tmp/scale_run.txt
    python3 - "$(awk '{print $NF}' /tmp/scale_run.txt | tail -1)" <<'PY'
import statistics, sys
from mlflow.tracking import MlflowClient
fps = [m.value for m in MlflowClient().get_metric_history(sys.argv[1], "time/fps")]
print(f"time/fps (collection + update, per batch): median {statistics.median(fps):,.0f}, "
      f"median of the last 10 {statistics.median(fps[-10:]):,.0f} frames/s over {len(fps)} batches")
PY
    echo "== 4. throughput, device=cuda"
    for envs in 65536 262144 1048576; do
      python3 benchmarks/throughput.py --device cuda --envs "$envs" --steps 16 --frames $((envs * 16 * 4)) --repeats 3
    done
    echo "== 5. ppo_atari_pong.yaml, device=cuda, 131072 frames (the CNN updates on the GPU, the ALE on the CPU)"
    if python3 -c "import cv2" 2>/dev/null; then
      timeout 300 python3 -m pgtorchrl pipelines/ppo_atari_pong.yaml device=cuda train.total_frames=131072 \
        eval.episodes=0 tracking.checkpoint_every_frames=null | tee /tmp/atari_run.txt
      python3 - "$(awk '{print $NF}' /tmp/atari_run.txt | tail -1)" <<'PY'
import statistics, sys
from mlflow.tracking import MlflowClient
fps = [m.value for m in MlflowClient().get_metric_history(sys.argv[1], "time/fps")]
print(f"Atari PPO time/fps on cuda: median {statistics.median(fps):,.0f} frames/s over {len(fps)} batches")
PY
    else
      echo "skipped: no OpenCV (cv2) on this machine"
    fi
  } 2>&1 | tee "$log"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash benchmarks/device_check.sh prepare|run" >&2; exit 2 ;;
esac
