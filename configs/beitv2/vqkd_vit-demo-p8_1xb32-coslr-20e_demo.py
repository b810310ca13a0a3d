# VQ-KD tokenizer training on the bundled demo images: a small encoder and
# decoder at 64x64 with 8x8 patches and a 64-code codebook. The teacher is a
# small randomly initialised ViT (fixed by the run's seed); point
# `model.teacher.init_cfg` at a pretrained one, e.g. the MAE demo's encoder
# (`dict(type='Pretrained', checkpoint=..., prefix='backbone.')`). The log
# shows `used_codes`: codebook collapse shows as a small number.
_base_ = ['../_base_/datasets/demo_pretrain.py', '../_base_/schedules/adamw_coslr_demo.py']

model = dict(
    type='VQKD',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    encoder=dict(type='ViT', arch=dict(embed_dim=64, depth=2, num_heads=4), img_size=64,
                 patch_size=8, qkv_bias=False, qv_bias=True, out_type='raw'),
    decoder=dict(type='ViT', arch=dict(embed_dim=64, depth=1, num_heads=4), img_size=8,
                 patch_size=1, in_channels=16, qkv_bias=False, qv_bias=True, out_type='raw'),
    num_tokens=64,
    codebook_dim=16,
    kmeans_init=True,
    teacher_dim=128,
    teacher=dict(type='MAEViT', arch=dict(embed_dim=128, depth=4, num_heads=4), img_size=64,
                 patch_size=8, out_type='raw'),
    teacher_mean=[123.675, 116.28, 103.53],
    teacher_std=[58.395, 57.12, 57.375])

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# As the VQ-KD recipe: betas (0.9, 0.99), weight decay 1e-4, no decay on the
# position embeddings; no gradient clipping.
optim_wrapper = dict(
    optimizer=dict(betas=(0.9, 0.99), weight_decay=1e-4),
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={'pos_embed': dict(decay_mult=0.0)}))
