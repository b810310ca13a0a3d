# UperNet with a CAE ViT-B/16 on ADE20K, the CAE release's recipe: lr 2e-4,
# layer scale 0.1, relative position bias per layer, q/v bias, drop path 0.1;
# layer decay 0.65 (the ViT-B value of the MAE / BEiT recipes; the CAE release
# does not restate it). The checkpoint must be in a layout mmmim reads
# (docs/official_weights.md): the official CAE file reader is still to come.
_base_ = [
    '_base_/upernet_vit-base.py', '_base_/ade20k_512x512.py', '_base_/schedule_160k.py',
    '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        pos_embed='learned',
        qv_bias=True,
        rel_pos_bias='per_layer',
        layer_scale_init_value=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/cae_base_pretrain_mmmim.pth')))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
