# BEiT v1 (Bao et al., 2022) ViT-B/16 on ImageNet-1K, the official recipe:
# DALL-E visual tokens of the 112-px view, 75 of 196 patches masked in blocks,
# shared relative position bias, layer scale 0.1, drop path 0.1, batch 2048,
# AdamW lr 1.5e-3 (0.9, 0.999), weight decay 0.05, 10 warm-up epochs, cosine
# to 1e-5, gradient clipping 3.0. Paper: 83.2 top-1 after fine-tuning (800e).
# The official DALL-E encoder (encoder.pkl) is read safely, without dall_e.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/imagenet/'
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
train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root=data_root, split='train', pipeline=train_pipeline))

max_epochs = 800
warmup_epochs = 10
# No weight decay on 1-D parameters (norms, biases, q/v biases, layer scales)
# and the class token / position embedding, as the official optimizer groups.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'q_bias': dict(decay_mult=0.0),
            'v_bias': dict(decay_mult=0.0),
            'gamma_': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=2048, enable=False)
