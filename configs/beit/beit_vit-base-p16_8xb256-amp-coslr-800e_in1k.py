# BEiT v1 (Bao et al., 2022) ViT-B/16 on ImageNet-1K, the official recipe:
# DALL-E visual tokens of the 112-px view, 75 of 196 patches masked in blocks,
# shared relative position bias, layer scale 0.1, drop path 0.1, batch 2048,
# AdamW lr 1.5e-3 (0.9, 0.999), weight decay 0.05, 10 warm-up epochs, cosine
# to 1e-5, gradient clipping 3.0. Paper: 83.2 top-1 after fine-tuning (800e).
# The official DALL-E encoder (encoder.pkl) is read safely, without dall_e.
_base_ = [
    '../_base_/datasets/imagenet_pretrain.py', '../_base_/schedules/adamw_coslr_beit.py',
    '../_base_/default_runtime.py'
]

tokenizer_path = 'data/tokenizers/dall_e_encoder.pkl'
model = dict(
    type='BEiT',
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        # the official default normalisation of the patch view (Inception: 0.5 / 0.5)
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(
        type='BEiTViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1),
    head=dict(type='TokenPredictionHead', embed_dim=768, vocab_size=8192),
    tokenizer=dict(
        type='DALLEEncoder', init_cfg=dict(type='Pretrained', checkpoint=tokenizer_path)))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropTwoViews', scale=224, second_scale=112,
         crop_ratio_range=(0.08, 1.0), interpolation='bicubic',
         second_interpolation='lanczos', backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=14, num_masking_patches=75,
         min_num_patches=16),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
