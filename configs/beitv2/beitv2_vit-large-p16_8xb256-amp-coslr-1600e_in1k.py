# BEiT v2 ViT-L/16: the CLS neck reads layer 21 of 24, layer scale 1e-5.
# Paper: 87.3 top-1 after fine-tuning (1600e).
_base_ = 'beitv2_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py'

model = dict(
    backbone=dict(arch='large', layer_scale_init_value=1e-5, out_indices=[20, 23]),
    neck=dict(early_layers=21, embed_dim=1024, num_heads=16, layer_scale_init_value=1e-5,
              depth=24),
    head=dict(embed_dim=1024))
