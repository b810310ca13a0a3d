# MAE ViT-H/14 fine-tuning: 50 epochs, base lr 1e-3 per 256, layer decay 0.75, drop path 0.3.
_base_ = 'mae-vit-large-p16_8xb128-amp-coslr-50e_in1k.py'
model = dict(
    backbone=dict(arch='huge', patch_size=14, drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='pretrain/mae_pretrain_vit_huge.pth')),
    head=dict(in_channels=1280))
