#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv:
# pinned torch, mmcv 2.1.0 built with its ops against that torch, the
# OpenMMLab stack, timm and mmmim itself (editable).
#
# The mmcv wheel is cached outside the clone, keyed by the torch and Python
# versions ($MMMIM_CACHE, default ~/.cache/mmmim), and the whole install is
# skipped when the requirement files have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv=${MMMIM_VENV:-$root/.venv}
cache=${MMMIM_CACHE:-$HOME/.cache/mmmim}
constraints=$root/requirements/constraints.txt
py=$venv/bin/python

stamp_of() {
    cat requirements/*.txt setup.py tools/misc/setup_env.sh | sha256sum | cut -d' ' -f1
}
stamp=$(stamp_of)
if [ -x "$py" ] && [ -f "$venv/.mmmim-stamp" ] && [ "$(cat "$venv/.mmmim-stamp")" = "$stamp" ] \
    && "$py" -c 'import mmmim, mmcv.ops, mmseg, mmdet' 2>/dev/null; then
    echo "[setup] $venv is up to date"
    exit 0
fi

[ -x "$py" ] || python3 -m venv "$venv"
pip_install() { "$py" -m pip install -q --disable-pip-version-check -c "$constraints" "$@"; }

echo "[setup] torch and build tools"
pip_install torch torchvision 'setuptools<80' wheel ninja

torch_ver=$("$py" -c 'import torch; print(torch.__version__)')
py_ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
wheel_dir=$cache/wheels/torch-$torch_ver-py$py_ver
mkdir -p "$wheel_dir"
if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    echo "[setup] building mmcv 2.1.0 with ops against torch $torch_ver (15-30 min on 2 cores)"
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    "$py" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
        -c "$constraints" mmcv==2.1.0 -d "$build"
    tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 asks for C++17.
    sed -i "s/-std=c++17/-std=c++20/g" "$build"/mmcv-2.1.0/setup.py
    (cd "$build"/mmcv-2.1.0 && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} \
        "$py" -m pip wheel -q --no-build-isolation --no-deps -w "$build/out" .)
    mv "$build"/out/mmcv-2.1.0-*.whl "$wheel_dir"/
fi

echo "[setup] OpenMMLab stack, timm and mmmim"
pip_install "$wheel_dir"/mmcv-2.1.0-*.whl
pip_install -r requirements/runtime.txt -r requirements/optional.txt -r requirements/tests.txt
pip_install --no-deps -e .
"$py" -c 'import mmmim, mmcv.ops, mmseg, mmdet, mmpretrain, timm; print("[setup] ok: torch", __import__("torch").__version__)'
echo "$stamp" > "$venv/.mmmim-stamp"
