# UperNet with an MAE-pretrained ViT-B/16 on ADE20K, the MAE paper's recipe:
# relative position bias and layer scale (init 1.0) added to the encoder,
# AdamW lr 1e-4, layer decay 0.65, drop path 0.1, 160k iterations, batch 16.
_base_ = [
    '_base_/upernet_vit-base.py', '_base_/ade20k_512x512.py', '_base_/schedule_160k.py',
    '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        pos_embed='learned',
        rel_pos_bias='per_layer',
        layer_scale_init_value=1.0,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/mae_pretrain_vit_base.pth')))
