# BEiT ViT-L/16 from beit_large_patch16_224_pt22k.pth, the official recipe
# (microsoft/unilm beit/get_started_for_image_classification.md): 50 epochs,
# batch 1024 (officially 8 GPUs x 64 x 2 accumulation steps), lr 1e-3
# (absolute), layer decay 0.75, drop path 0.2, 5 warm-up epochs; the rest as
# for ViT-B. Reported top-1: 86.0 (official README, from this checkpoint);
# the paper reports 85.2 for BEiT-L pretrained on ImageNet-1k only.
_base_ = 'beit-vit-base-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(
    backbone=dict(
        arch='large',
        layer_scale_init_value=1e-5,  # replaced by the checkpoint's gamma_1 / gamma_2
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='pretrain/beit_large_patch16_224_pt22k.pth')),
    head=dict(in_channels=1024))
max_epochs = 50
warmup_epochs = 5
optim_wrapper = dict(optimizer=dict(lr=1e-3), paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
