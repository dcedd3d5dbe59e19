#!/usr/bin/env bash
# Measures the speed page's figures (docs/benchmarks/speed.md) again and writes what each benchmark
# prints to benchmarks/results/speed_NAME.txt, headed by its command, the date and the machine.
# Run it on an otherwise idle machine: every figure is a wall-clock one (about 15 minutes on 2 cores).
#   bash benchmarks/speed_results.sh                 # all of them
#   bash benchmarks/speed_results.sh solve startup   # some
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A COMMANDS=(
  [solve]="benchmarks/solve.py"
  [throughput]="benchmarks/throughput.py --envs 8 --steps 32"
  [vs_sb3_cartpole]="benchmarks/vs_sb3.py --seeds 0 1 2 3 4"
  [startup]="benchmarks/startup.py --repeats 5 --imports"
  [mujoco_vpg]="benchmarks/mujoco_throughput.py"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(solve throughput vs_sb3_cartpole startup mujoco_vpg)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
for name in "${names[@]}"; do
  command=${COMMANDS[$name]:?"unknown benchmark $name (known: ${!COMMANDS[*]})"}
  {
    echo "# python $command   ($(date -u +%F), $(nproc) CPUs: $cpu)"
    # shellcheck disable=SC2086  # the command's words
    python $command
  } | tee "benchmarks/results/speed_$name.txt"
done
