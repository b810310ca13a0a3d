# The demo with the multi-level ViT + FPN neck instead of the simple pyramid:
# the outputs of all four blocks rescaled 4x / 2x / 1x / 0.5x (BatchNorm in
# the 4x branch) and mmdet's FPN; otherwise as the ViTDet demo. On this tiny
# demo MAE it learns far faster than the simple pyramid (docs/detection.md).
_base_ = 'mask-rcnn-vitdet_mae-vit-demo-p8_1xb4-600i_demo-coco.py'
model = dict(
    backbone=dict(out_indices=[0, 1, 2, 3]),
    neck=[
        dict(type='mmmim.FeaturePyramid', embed_dim=128, rescales=[4, 2, 1, 0.5], norm='BN'),
        dict(type='FPN', in_channels=[128, 128, 128, 128], out_channels=64, num_outs=5),
    ])
