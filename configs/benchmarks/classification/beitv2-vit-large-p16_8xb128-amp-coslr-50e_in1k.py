# BEiT v2 ViT-L/16 from beitv2_large_patch16_224_pt1k.pth (1600 epochs), the
# official recipe (microsoft/unilm beit2/get_started_for_image_classification.md,
# values for pretrained models): 50 epochs, batch 1024 (officially 8 GPUs x
# 64 x 2 accumulation steps), lr 2e-4 (absolute), layer decay 0.8, drop path
# 0.2, Mixup 0.8 / CutMix 1.0, 5 warm-up epochs; the rest as for ViT-B.
# Reported top-1: 87.3 (official README and paper, ViT-L 1600 epochs).
# Not verified: the warm-up length (the README command's 5 epochs is written
# for the intermediate-fine-tuned checkpoint).
_base_ = 'beitv2-vit-base-p16_8xb128-amp-coslr-100e_in1k.py'
model = dict(
    backbone=dict(
        arch='large',
        layer_scale_init_value=1e-5,  # replaced by the checkpoint's gamma_1 / gamma_2
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='pretrain/beitv2_large_patch16_224_pt1k.pth')),
    head=dict(in_channels=1024))
max_epochs = 50
warmup_epochs = 5
optim_wrapper = dict(optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=0.8))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
