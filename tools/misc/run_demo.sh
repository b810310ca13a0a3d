#!/usr/bin/env bash
# The main job on the bundled demo data: generate the demo images (once),
# pretrain MAE on them on the CPU, and draw a reconstruction picture.
# Runs inside the environment made by tools/misc/setup_env.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-.venv/bin/python}
config=configs/mae/mae_vit-demo-p8_1xb32-coslr-80e_demo.py
work_dir=work_dirs/mae_demo

[ -d data/demo/train ] || "$py" tools/misc/make_demo_data.py data/demo
# --resume continues an interrupted demo, and finishes at once if it is complete.
"$py" tools/train.py "$config" --work-dir "$work_dir" --resume
"$py" tools/analysis_tools/visualize_reconstruction.py "$config" "$work_dir/epoch_80.pth" \
    data/demo/val/disc/disc_0000.jpg data/demo/val/stripes/stripes_0000.jpg \
    data/demo/val/checker/checker_0000.jpg data/demo/val/ring/ring_0000.jpg \
    --out "$work_dir/reconstruction.png" --force
