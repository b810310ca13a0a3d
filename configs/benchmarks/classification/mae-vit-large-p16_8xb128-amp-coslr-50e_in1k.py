# MAE ViT-L/16 fine-tuning: 50 epochs, base lr 1e-3 per 256, layer decay 0.75, drop path 0.2.
_base_ = 'mae-vit-base-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint='pretrain/mae_pretrain_vit_large.pth')),
    head=dict(in_channels=1024))
max_epochs = 50
optim_wrapper = dict(optimizer=dict(lr=1e-3 * 1024 / 256), paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, eta_min=1e-6, by_epoch=True, begin=5,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
