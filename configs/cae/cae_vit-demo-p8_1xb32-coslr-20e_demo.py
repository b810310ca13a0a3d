# CAE on the bundled demo images: a small ViT at 64x64 with 8x8 patches, 32 of
# 64 patches masked. The tokenizer is a small randomly initialised dVAE
# encoder (fixed by the run's seed), as in the BEiT demo: the token loss is
# nearly trivial there, the alignment loss is not.
_base_ = ['../_base_/datasets/demo_pretrain.py', '../_base_/schedules/adamw_coslr_demo.py']

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
        arch=dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=64,
        patch_size=8),
    neck=dict(type='CAENeck', embed_dim=128, num_heads=4, regressor_depth=2, decoder_depth=2),
    head=dict(type='TokenPredictionHead', embed_dim=128, vocab_size=64),
    tokenizer=dict(type='DALLEEncoder', n_hid=16, vocab_size=64))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropTwoViews', scale=64, second_scale=64,
         crop_ratio_range=(0.5, 1.0), interpolation='bicubic',
         second_interpolation='lanczos', backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=8, num_masking_patches=32,
         min_num_patches=4),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'cls_token': dict(decay_mult=1.0)}))

# The base runtime's hooks, plus the k-NN accuracy of the encoder on the demo
# val/ split (train/ as the memory bank) every 5 epochs: `knn/top1` in the log.
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='KNNEvalHook', interval=5),
]
