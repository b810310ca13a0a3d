_base_ = 'mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'
# ViT-L/16 encoder, same 512-d 8-block decoder.
model = dict(
    backbone=dict(arch='large'),
    neck=dict(embed_dim=1024))
