# Mask R-CNN with a BEiT ViT-B/16 (self-supervised on ImageNet-22k) on COCO,
# the ViTDet recipe: BEiT's backbone options (no absolute position embedding,
# q / v biases, layer scale) and its relative position tables instead of
# ViTDet's decomposed ones, the file's shared table copied into every block
# (windowed blocks keep the 14x14 table, global blocks get it resized to
# 64x64). Hyper-parameters are the MAE ViT-B ones, not tuned for BEiT.
_base_ = 'mask-rcnn-vitdet_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'
model = dict(
    backbone=dict(
        use_rel_pos=False,
        rel_pos_bias='per_layer',
        pos_embed=None,
        qv_bias=True,
        layer_scale_init_value=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/beit_base_patch16_224_pt22k.pth')))
