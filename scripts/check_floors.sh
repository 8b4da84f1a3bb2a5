#!/usr/bin/env bash
# Check the dependency floors written in pyproject.toml: build a fresh virtual environment with
# every floor pinned exactly, install seqjax into it without dependencies, and run a test subset
# that covers the recurrent layers, the training engine (shard_map over several CPU devices,
# checkpoints, resume), the classifiers, the CLI, the PyTorch parity and the tfds reader.
# With --below, also put the release just below each jax / optax / flax / orbax floor in place,
# one at a time, and check that a test then fails on the API that sets the floor.
#
# Too slow for CI (about 4 min of installs and 13 min of tests on 2 cores): run it by hand after
# changing a floor or calling a newer library API.
#
#   bash scripts/check_floors.sh [--below] [VENV_DIR]      (default VENV_DIR: /tmp/seqjax-floors)
set -euo pipefail
cd "$(dirname "$0")/.."

below=0
if [ "${1:-}" = "--below" ]; then below=1; shift; fi
venv="${1:-/tmp/seqjax-floors}"

# The floors, as in pyproject.toml (keep the two in step).
floors=(jax==0.6.1 jaxlib==0.6.1 flax==0.10.0 optax==0.2.5 orbax-checkpoint==0.8.0
        numpy==1.26.0 tensorflow-datasets==4.9.3 tqdm==4.66.0 matplotlib==3.8.0)
# Test-only: torch for the parity tests; dill, which tfds.testing imports in tfds 4.9.3.
extras=(torch==2.13.0 pytest dill)

subset=(tests/test_recurrent.py tests/test_train_engine.py tests/test_classifiers.py
        tests/test_cli_basics.py tests/test_torch_parity.py
        tests/test_imdb_vocab_tokenize.py::test_tfds_source_gives_same_record_format)

rm -rf "$venv"
python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
nice -n 10 python -m pip install -q "${floors[@]}" "${extras[@]}"
nice -n 10 python -m pip install -q --no-deps -e .
python - <<'EOF'
import importlib.metadata as md
for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets",
             "tqdm", "matplotlib", "protobuf", "torch"):
    print(f"{name}=={md.version(name)}")
EOF
export PYTHONPATH="$PWD"
nice -n 10 python -m pytest -q -p no:cacheprovider "${subset[@]}"

[ "$below" = 1 ] || exit 0

# release below the floor | the test that must fail | the error it must name
probes=(
  "jax==0.6.0 jaxlib==0.6.0|tests/test_train_engine.py::test_device_counts_give_the_same_losses|has no attribute 'shard_map'"
  "optax==0.2.4|tests/test_train_engine.py::test_one_step_changes_every_param|has no attribute 'tree'"
  "flax==0.9.0|tests/test_classifiers.py|has no attribute 'level'"
  "orbax-checkpoint==0.7.0|tests/test_train_engine.py::test_device_counts_give_the_same_losses|enable_memories"
)
status=0
for probe in "${probes[@]}"; do
  IFS='|' read -r pins test expect <<<"$probe"
  # shellcheck disable=SC2086  # pins is a list of requirements
  nice -n 10 python -m pip install -q --no-deps $pins
  out="$(nice -n 10 python -m pytest -q -x -p no:cacheprovider "$test" 2>&1 || true)"
  if grep -q "$expect" <<<"$out" && grep -q " failed" <<<"$out"; then
    echo "below the floor: $pins fails $test ($expect)"
  else
    echo "below the floor: $pins did NOT fail $test with \"$expect\"; the floor may be too high"
    status=1
  fi
  nice -n 10 python -m pip install -q --no-deps "${floors[@]}"
done
exit "$status"
