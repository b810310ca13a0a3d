# BEiT ViT-L/16 at 640x640: lr 2e-5, layer decay 0.95, layer scale 1e-6,
# drop path 0.2, 3,000 warm-up iterations, 8 GPUs x 1 image x 2 accumulation.
_base_ = 'upernet_beit-vit-base-p16_8xb2-amp-160k_ade20k-640x640.py'
model = dict(
    backbone=dict(
        arch='large',
        out_indices=[7, 11, 15, 23],
        layer_scale_init_value=1e-6,
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained',
                      checkpoint='pretrain/beit_large_patch16_224_pt22k_ft22k.pth')),
    neck=dict(embed_dim=1024),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024], channels=1024),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(
    optimizer=dict(lr=2e-5), paramwise_cfg=dict(layer_decay_rate=0.95), accumulative_counts=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=3000),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=3000, end=160000),
]
train_dataloader = dict(batch_size=1)
