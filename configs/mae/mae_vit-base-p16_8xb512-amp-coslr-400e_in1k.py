_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet_mae.py',
    '../_base_/schedules/adamw_coslr_mae.py',
    '../_base_/default_runtime.py',
]
# 400 epochs, effective batch 4096 (8 GPUs x 512), bf16 autocast.
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
