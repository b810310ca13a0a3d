# BEiT v2 ViT-B/16, the official 300-epoch recipe: betas (0.9, 0.98) and no
# drop path; otherwise as the 1600-epoch one. Paper: 85.0 top-1 after fine-tuning.
_base_ = 'beitv2_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py'

model = dict(backbone=dict(drop_path_rate=0.0), neck=dict(drop_path_rate=0.0))
optim_wrapper = dict(optimizer=dict(betas=(0.9, 0.98)))
max_epochs = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, by_epoch=True, begin=10,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
