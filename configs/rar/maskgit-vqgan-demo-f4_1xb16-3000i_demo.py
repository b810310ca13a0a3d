# A small MaskGIT-VQGAN tokenizer on the bundled demo images (tools/misc/make_demo_data.py),
# the first stage of the RAR demo (docs/rar.md). The 64x64 demo images are taken at 32x32
# (a 2x box down-sampling, as tools/misc/tokenize_images.py --size 32 does) and coded as 8x8
# codes of a 256 x 32 codebook (f4: channel_mult of 3 levels, 16 base channels, GroupNorm(8):
# the official widths need 32 groups). L1 + L2 + VQ losses, dead-code restarts, fp32;
# 0.12M parameters (the official f16 tokenizer: 54.5M), ~12 CPU minutes with OMP_NUM_THREADS=1.
# The ImageNet tokenizer is the official f16 file (MaskGITVQGAN defaults). Options: an
# adversarial term (discriminator=dict(type='PatchGANDiscriminator'), disc_start, and
# optim_wrapper=dict(constructor='GANOptimWrapperConstructor', generator=..., discriminator=...))
# and a perceptual one (perceptual=dict(type='VGGPerceptualLoss', vgg_weights=FILE)).
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/demo/'
model = dict(
    type='MaskGITVQGAN',
    hidden_channels=16,
    channel_mult=(1, 1, 2),
    num_res_blocks=1,
    z_channels=32,
    num_embeddings=256,
    num_groups=8,
    l1_weight=1.0,
    l2_weight=1.0,
    restart_dead_codes=20,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255], to_rgb=True))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='Resize', scale=(32, 32), interpolation='area'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', with_label=False,
                 pipeline=train_pipeline))

max_iters = 3000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.5, 0.9), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=1e-5, by_epoch=False,
         begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
