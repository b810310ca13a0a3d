# Linear probing of an MAE ViT-B/16, the MAE recipe: frozen encoder, class
# token after the final norm, BatchNorm without affine before the linear
# head, LARS (base lr 0.1 per 256, batch 16384, no weight decay), 10 warm-up
# epochs then cosine over 90 epochs; RandomResizedCrop + flip only.
_base_ = ['_base_/imagenet_finetune.py', '_base_/default_runtime.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=2048, dataset=dict(pipeline=train_pipeline))
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmmim.ViT',
        arch='base',
        img_size=224,
        patch_size=16,
        pos_embed='sincos',
        out_type='cls_token',
        frozen_stages=12,
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/mae_pretrain_vit_base.pth')),
    neck=dict(type='ClsBatchNormNeck', input_features=768),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))
max_epochs = 90
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, eta_min=0.0, by_epoch=True, begin=10,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16384, enable=False)
