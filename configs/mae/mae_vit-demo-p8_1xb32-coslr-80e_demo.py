# MAE on the bundled demo images (tools/misc/make_demo_data.py): a small ViT
# at 64x64 with 8x8 patches that trains in a few minutes on two CPU cores.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/demo/'
model = dict(
    type='MAE',
    mask_ratio=0.75,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='MAEViT',
        arch=dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=64,
        patch_size=8),
    neck=dict(
        type='MAEDecoder',
        img_size=64,
        patch_size=8,
        embed_dim=128,
        decoder_embed_dim=96,
        decoder_depth=2,
        decoder_num_heads=4),
    # Plain pixel targets, so that the reconstruction picture shows the model's
    # own colours (the paper's visualisation models are trained this way too).
    head=dict(type='PixelReconstructionHead', patch_size=8, norm_pix=False))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=train_pipeline))

max_epochs = 80
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))  # as the official recipe
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, by_epoch=True, begin=5,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=32, enable=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2))
# The base runtime's hooks, plus the k-NN accuracy of the encoder on the demo
# val/ split (train/ as the memory bank) every 10 epochs: `knn/top1` in the log.
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='KNNEvalHook', interval=10),
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
