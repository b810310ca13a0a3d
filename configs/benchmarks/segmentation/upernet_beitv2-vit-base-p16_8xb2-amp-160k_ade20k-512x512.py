# UperNet with a BEiT v2 ViT-B/16 on ADE20K, the official BEiT v2 recipe:
# relative position bias per layer (no absolute embedding), q/v bias, layer
# scale 0.1, drop path 0.15, AdamW lr 5e-5, layer decay 0.75, 160k iterations.
_base_ = [
    '_base_/upernet_vit-base.py', '_base_/ade20k_512x512.py', '_base_/schedule_160k.py',
    '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        pos_embed=None,
        qv_bias=True,
        rel_pos_bias='per_layer',
        layer_scale_init_value=0.1,
        drop_path_rate=0.15,
        init_cfg=dict(type='Pretrained',
                      checkpoint='pretrain/beitv2_base_patch16_224_pt1k.pth')))
optim_wrapper = dict(optimizer=dict(lr=5e-5), paramwise_cfg=dict(layer_decay_rate=0.75))
