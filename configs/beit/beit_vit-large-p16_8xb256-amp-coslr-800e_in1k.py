# BEiT v1 ViT-L/16: the base recipe with layer scale 1e-5 (the official value
# for large models). Paper: 85.2 top-1 after fine-tuning (800e, ImageNet-1K).
_base_ = 'beit_vit-base-p16_8xb256-amp-coslr-800e_in1k.py'

model = dict(
    backbone=dict(arch='large', layer_scale_init_value=1e-5),
    head=dict(embed_dim=1024))
