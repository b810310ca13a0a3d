_base_ = 'mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'
# ViT-H/14 encoder (16x16 patches at 224), same decoder.
model = dict(
    backbone=dict(arch='huge', patch_size=14),
    neck=dict(embed_dim=1280, patch_size=14),
    head=dict(patch_size=14))
max_epochs = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 40, by_epoch=True, begin=40,
         end=max_epochs, eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
