# Mask R-CNN with an MAE ViT-B/16 and a multi-level FPN, the detection design
# of the MAE / BEiT papers: the outputs of blocks 3, 5, 7 and 11 rescaled
# 4x / 2x / 1x / 0.5x (mmmim.FeaturePyramid), then mmdet's FPN (256 channels,
# an extra max-pooled level). Backbone, heads, data and schedule as in the
# ViTDet config, which only differs in the neck.
_base_ = 'mask-rcnn-vitdet_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'
model = dict(
    backbone=dict(out_indices=[3, 5, 7, 11]),
    neck=[
        dict(type='mmmim.FeaturePyramid', embed_dim=768, rescales=[4, 2, 1, 0.5], norm='SyncBN'),
        dict(type='FPN', in_channels=[768, 768, 768, 768], out_channels=256, num_outs=5),
    ])
