# CAE (Chen et al., 2023) ViT-B/16 on ImageNet-1K, the official recipe: DALL-E
# tokens of the 112-px view, 98 of 196 patches masked in blocks, encoder on the
# visible patches, 4 regressor and 4 decoder blocks, alignment loss weight 2,
# layer scale 0.1, drop path 0.1, batch 2048, AdamW lr 1.5e-3 (0.9, 0.999),
# weight decay 0.05, 10 warm-up epochs (20 / 40 for 800 / 1600), cosine to
# 1e-5, gradient clipping 3.0, no colour jitter. Paper: 83.6 top-1 after
# fine-tuning (300e), 83.9 (1600e).
_base_ = [
    '../_base_/datasets/imagenet_pretrain.py', '../_base_/schedules/adamw_coslr_beit.py',
    '../_base_/default_runtime.py'
]

tokenizer_path = 'data/tokenizers/dall_e_encoder.pkl'
model = dict(
    type='CAE',
    align_weight=2.0,
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='CAEViT',
        arch='base',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1),
    neck=dict(
        type='CAENeck',
        embed_dim=768,
        num_heads=12,
        regressor_depth=4,
        decoder_depth=4,
        layer_scale_init_value=0.1,
        drop_path_rate=0.1),
    head=dict(type='TokenPredictionHead', embed_dim=768, vocab_size=8192),
    tokenizer=dict(
        type='DALLEEncoder', init_cfg=dict(type='Pretrained', checkpoint=tokenizer_path)))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropTwoViews', scale=224, second_scale=112,
         crop_ratio_range=(0.08, 1.0), interpolation='bicubic',
         second_interpolation='lanczos', backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=14, num_masking_patches=98,
         min_num_patches=16),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# The official CAE model declares no exempt parameters: its class token is decayed.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'cls_token': dict(decay_mult=1.0)}))
max_epochs = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, by_epoch=True, begin=10,
         end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
