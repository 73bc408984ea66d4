#!/usr/bin/env bash
# Download, on a machine with PyPI access, the wheels benchmarks/gpu.sh installs on a GPU machine that has none:
# the bundle's requirements that a GPU image with CUDA torch, numpy, scikit-learn, tensorboard and tqdm lacks, at the
# versions installed in .venv here. Pure-Python wheels, about 6 MB, into benchmarks/wheels (git-ignored: copy it to
# the GPU machine with the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
DEST=benchmarks/wheels
pins=()
for package in monai nibabel pytorch-ignite fire termcolor; do
    pins+=("$package==$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$package")")
done
rm -rf "$DEST"
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d "$DEST" "${pins[@]}"
ls -la "$DEST"
