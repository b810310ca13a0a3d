# Mask R-CNN with an MAE-pretrained ViT-B/16 on COCO, the ViTDet recipe (Li et
# al., 2022; detectron2 projects/ViTDet mask_rcnn_vitdet_b_100ep): 1024 LSJ,
# 100 epochs at batch 64, AdamW lr 1e-4, weight decay 0.1, layer decay 0.7,
# drop path 0.1, fp16 autocast, decomposed relative positions (new and
# zero: the MAE encoder has none); the learned position embedding starts
# from the file's table without its class-token entry, resized to 64x64.
# Reported (detectron2 ViTDet release, 64 GPUs x 1 image, the same design):
# 51.6 box AP, 45.9 mask AP; not reproduced here.
_base_ = [
    '_base_/mask-rcnn_vitdet-base.py', '_base_/coco_instance_lsj-1024.py',
    '_base_/schedule_lsj-100e.py', '_base_/default_runtime.py'
]
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='pretrain/mae_pretrain_vit_base.pth')))
