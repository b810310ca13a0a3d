# ViTDet Mask R-CNN on the demo COCO-layout data (tools/misc/make_demo_data.py
# data/demo_coco --layout coco), backbone from the demo MAE
# (work_dirs/mae_demo/epoch_80.pth): 128x128 inputs, 8x8 patches, 6x6-patch
# windows (the 16x16 grid is padded to 18x18) in blocks 0 and 2, global
# attention in 1 and 3, decomposed relative positions as in the MAE ViTDet
# configs; narrow heads; 600 CPU iterations at lr 1e-3. The demo recipe puts
# BatchNorm in the pyramid (norm='BN'): with the published LayerNorms this
# tiny backbone hardly learns in 600 iterations (bbox AP 1.3), with BatchNorm
# it does (40.9); see docs/detection.md. The ImageNet-size configs keep 'LN'.
_base_ = [
    '_base_/mask-rcnn_vitdet-base.py', '_base_/coco_instance_lsj-1024.py',
    '_base_/schedule_lsj-100e.py', '_base_/default_runtime.py'
]
data_root = 'data/demo_coco/'
metainfo = dict(classes=('disc', 'stripes', 'checker', 'ring'))
image_size = (128, 128)
strides = [2, 4, 8, 16]
model = dict(
    data_preprocessor=dict(pad_size_divisor=128),
    backbone=dict(
        arch=dict(_delete_=True, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=128,
        patch_size=8,
        window_size=6,
        window_block_indexes=[0, 2],
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/mae_demo/epoch_80.pth')),
    neck=dict(in_channels=128, out_channels=64, norm='BN'),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(strides=strides + [32])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=strides),
        bbox_head=dict(in_channels=64, conv_out_channels=32, fc_out_channels=256, num_classes=4),
        mask_roi_extractor=dict(out_channels=64, featmap_strides=strides),
        mask_head=dict(in_channels=64, conv_out_channels=32, num_classes=4)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300), rcnn=dict(max_per_img=20)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
max_iters = 600
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # fp32 on the CPU
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='mmmim.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[480, 540],
         gamma=0.1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
auto_scale_lr = dict(base_batch_size=4)
