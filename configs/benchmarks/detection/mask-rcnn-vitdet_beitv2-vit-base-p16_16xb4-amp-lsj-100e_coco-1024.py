# Mask R-CNN with a BEiT v2 ViT-B/16 (1600 epochs on ImageNet-1k) on COCO, the
# ViTDet recipe with BEiT v2's backbone options (no absolute position
# embedding, q / v biases, layer scale, per-block BEiT relative position
# tables from the file instead of ViTDet's decomposed ones, resized to 64x64
# for the global blocks). Hyper-parameters are the MAE ViT-B ones, not tuned
# for BEiT v2.
_base_ = 'mask-rcnn-vitdet_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'
model = dict(
    backbone=dict(
        use_rel_pos=False,
        rel_pos_bias='per_layer',
        pos_embed=None,
        qv_bias=True,
        layer_scale_init_value=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/beitv2_base_patch16_224_pt1k.pth')))
