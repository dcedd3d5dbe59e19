"""Every iteration's metrics of a short training run, as JSON: the check that a speed change did not
change learning. Run it in two checkouts (``git worktree add /tmp/before <commit>``, then there with
``PYTHONPATH=/tmp/before``) and compare the files; ``time/`` metrics are left out.

    python benchmarks/same_metrics.py pipelines/mujoco/ppo_halfcheetah.yaml --frames 10240 --out after.json
    cmp before.json after.json && echo identical
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("--frames", type=int, required=True, help="train.total_frames")
    parser.add_argument("--out", default="-", help="the JSON file (- for stdout)")
    parser.add_argument("overrides", nargs="*", help="spec overrides, as on the command line")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"  # a throwaway store
    import torch

    from pgtorchrl import load_spec, train

    torch.set_num_threads(1)
    spec = load_spec(args.pipeline, overrides=[f"train.total_frames={args.frames}", *args.overrides])
    rows = [{k: v for k, v in row.items() if not k.startswith("time/")} for row in train(spec).curve]
    text = json.dumps(rows, indent=0)
    if args.out == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
