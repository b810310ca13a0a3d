# Mask R-CNN with an MAE-pretrained ViT-L/16 on COCO, the ViTDet recipe
# (mask_rcnn_vitdet_l_100ep): global attention in blocks 5, 11, 17, 23,
# layer decay 0.8, drop path 0.4; otherwise as the ViT-B config.
# Reported (detectron2 ViTDet release, 64 GPUs x 1 image, decomposed relative
# positions): 55.5 box AP, 49.2 mask AP; not reproduced here.
_base_ = 'mask-rcnn-vitdet_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'
model = dict(
    backbone=dict(
        arch='large',
        window_block_indexes=[i for i in range(24) if i % 6 != 5],
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/mae_pretrain_vit_large.pth')),
    neck=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
