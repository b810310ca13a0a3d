# CAE ViT-B/16, the official 1600-epoch recipe: 40 warm-up epochs.
_base_ = 'cae_vit-base-p16_8xb256-amp-coslr-300e_in1k.py'

max_epochs = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 40, by_epoch=True, begin=40,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
