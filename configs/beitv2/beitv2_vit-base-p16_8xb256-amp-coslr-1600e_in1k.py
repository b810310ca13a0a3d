# BEiT v2 (Peng et al., 2022) ViT-B/16 on ImageNet-1K, the official 1600-epoch
# recipe: VQ-KD tokens of the same 224-px crop, 75 of 196 patches masked in
# blocks, CLS neck of 2 blocks over layer 9, shared head, shared relative
# position bias, layer scale 0.1, drop path 0.1, batch 2048, AdamW lr 1.5e-3
# (0.9, 0.999), weight decay 0.05, 10 warm-up epochs, cosine to 1e-5, gradient
# clipping 3.0. Paper: 85.5 top-1 after fine-tuning.
_base_ = [
    '../_base_/datasets/imagenet_pretrain.py', '../_base_/schedules/adamw_coslr_beit.py',
    '../_base_/default_runtime.py'
]

tokenizer_path = 'data/tokenizers/vqkd_encoder_base_decoder_3x768x12_clip-d5036aa7.pth'
model = dict(
    type='BEiTv2',
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        # VQ-KD takes pixels scaled to [-1, 1]
        target_mean=[127.5, 127.5, 127.5],
        target_std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(
        type='BEiTViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        out_indices=[8, 11]),
    neck=dict(
        type='BEiTV2Neck',
        num_layers=2,
        early_layers=9,
        embed_dim=768,
        num_heads=12,
        layer_scale_init_value=0.1,
        drop_path_rate=0.1,
        depth=12),
    head=dict(type='TokenPredictionHead', embed_dim=768, vocab_size=8192),
    tokenizer=dict(
        type='VQKD',
        encoder=dict(type='ViT', arch='base', img_size=224, patch_size=16, qkv_bias=False,
                     qv_bias=True, out_type='raw'),
        decoder=dict(type='ViT', arch=dict(embed_dim=768, depth=3, num_heads=12), img_size=14,
                     patch_size=1, in_channels=32, qkv_bias=False, qv_bias=True,
                     out_type='raw'),
        num_tokens=8192,
        codebook_dim=32,
        teacher_dim=512,
        init_cfg=dict(type='Pretrained', checkpoint=tokenizer_path)))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropTwoViews', scale=224, second_scale=224,
         crop_ratio_range=(0.2, 1.0), interpolation='bicubic',
         second_interpolation='bicubic', backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=14, num_masking_patches=75,
         min_num_patches=16),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 1600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, by_epoch=True, begin=10,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
