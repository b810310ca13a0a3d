# BLIP with the official sizes: ViT-B/16 (timm names, qkv bias, LayerNorm eps 1e-6) and
# bert-base MED (30,524 ids: bert-base-uncased + [DEC] + [ENC]), CLIP normalisation and
# the official image augmentation (RandomResizedCrop, flip, RandomAugment(2, 5) ops).
_base_ = ['../../_base_/default_runtime.py']

# Local copies: nothing downloads. The bert-base-uncased folder holds vocab.txt and its
# weights; the DeiT-B file is deit_base_patch16_224-b5f2ef4d.pth (ImageNet).
tokenizer = 'pretrained/bert-base-uncased'
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True)
med = dict(arch='base', vocab_size=30524)

# RandomAugment(2, 5) of the official transform/randaugment.py: two of these ops per image
# at magnitude 5 of 10 (Identity is left out: mmpretrain's RandAugment has no no-op).
rand_augment = dict(
    type='RandAugment',
    policies=[
        dict(type='AutoContrast'),
        dict(type='Brightness', magnitude_range=(0, 0.9)),
        dict(type='Sharpness', magnitude_range=(0, 0.9)),
        dict(type='Equalize'),
        dict(type='Shear', magnitude_range=(0, 0.3), direction='horizontal'),
        dict(type='Shear', magnitude_range=(0, 0.3), direction='vertical'),
        dict(type='Translate', magnitude_range=(0, 0.05), direction='horizontal'),
        dict(type='Translate', magnitude_range=(0, 0.05), direction='vertical'),
        dict(type='Rotate', magnitude_range=(0, 30)),
    ],
    num_policies=2,
    magnitude_level=5,
    total_level=10)


# Pretraining: 224 px crops of 20-100% of the image; fine-tuning: 384 px, 50-100%;
# evaluation: resized to 384 x 384.
pretrain_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    rand_augment,
    dict(type='PackInputs', algorithm_keys=['text', 'image_id']),
]
finetune_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=384, crop_ratio_range=(0.5, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    rand_augment,
    dict(type='PackInputs', algorithm_keys=['text', 'image_id']),
]
test_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='Resize', scale=(384, 384), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs', algorithm_keys=['texts', 'image_id']),
]

env_cfg = dict(dist_cfg=dict(backend='nccl'))
default_hooks = dict(logger=dict(type='LoggerHook', interval=50))
