# BEiT v1 on the bundled demo images (tools/misc/make_demo_data.py): a small
# ViT at 64x64 with 8x8 patches. The official DALL-E encoder is not bundled,
# so the demo tokenizer is a small randomly initialised dVAE encoder (fixed by
# the run's seed): a target the model can learn, not a semantic one.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/demo/'
model = dict(
    type='BEiT',
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(
        type='BEiTViT',
        arch=dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=64,
        patch_size=8,
        drop_path_rate=0.0,
        layer_scale_init_value=0.1),
    head=dict(type='TokenPredictionHead', embed_dim=128, vocab_size=64),
    tokenizer=dict(type='DALLEEncoder', n_hid=16, vocab_size=64))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropTwoViews', scale=64, second_scale=64,
         crop_ratio_range=(0.5, 1.0), interpolation='bicubic',
         second_interpolation='lanczos', backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=8, num_masking_patches=24,
         min_num_patches=4),
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

max_epochs = 20
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'q_bias': dict(decay_mult=0.0),
            'v_bias': dict(decay_mult=0.0),
            'gamma_': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, by_epoch=True, begin=2,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=32, enable=False)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
