# Mask R-CNN with a CAE ViT-B/16 (800 epochs on ImageNet-1k) on COCO, the
# ViTDet recipe with CAE's backbone options: q / v biases and layer scale
# from the file; the file's sin-cos table (without its class-token entry)
# starts a learned position embedding resized to 64x64; BEiT-style relative
# position tables (new, zero) instead of ViTDet's decomposed ones. The
# official training file must be converted once (docs/official_weights.md).
# Hyper-parameters are the MAE ViT-B ones, not tuned for CAE.
_base_ = 'mask-rcnn-vitdet_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'
model = dict(
    backbone=dict(
        use_rel_pos=False,
        rel_pos_bias='per_layer',
        qv_bias=True,
        layer_scale_init_value=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/cae_base_800e.pth')))
