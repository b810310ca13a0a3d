# CAE ViT-B/16, the official 800-epoch recipe: 20 warm-up epochs.
_base_ = 'cae_vit-base-p16_8xb256-amp-coslr-300e_in1k.py'

max_epochs = 800
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 20, by_epoch=True, begin=20,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
