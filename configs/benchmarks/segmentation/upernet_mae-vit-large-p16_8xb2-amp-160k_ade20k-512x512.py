# UperNet with an MAE-pretrained ViT-L/16 on ADE20K (blocks 7, 11, 15, 23).
_base_ = 'upernet_mae-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='large',
        out_indices=[7, 11, 15, 23],
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/mae_pretrain_vit_large.pth')),
    neck=dict(embed_dim=1024),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024], channels=1024),
    auxiliary_head=dict(in_channels=1024))
