# UperNet with BEiT ViT-B/16 (ImageNet-22k pretrained and fine-tuned) on
# ADE20K at 640x640, BEiT's recipe: lr 3e-5, layer decay 0.9, layer scale 0.1,
# drop path 0.1, slide inference 640 / 426.
_base_ = [
    '_base_/upernet_vit-base.py', '_base_/ade20k_512x512.py', '_base_/schedule_160k.py',
    '_base_/default_runtime.py'
]
crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        img_size=640,
        pos_embed=None,
        qv_bias=True,
        rel_pos_bias='per_layer',
        layer_scale_init_value=0.1,
        init_cfg=dict(type='Pretrained',
                      checkpoint='pretrain/beit_base_patch16_224_pt22k_ft22k.pth')),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmim.CheckSegMapSize'),
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='mmmim.CheckSegMapSize'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=3e-5), paramwise_cfg=dict(layer_decay_rate=0.9))
