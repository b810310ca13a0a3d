# BEiT v2 on the bundled demo images: a small ViT at 64x64 with 8x8 patches,
# the CLS neck over layer 3 of 4. The tokenizer is a small randomly
# initialised VQ-KD (fixed by the run's seed); point `tokenizer.init_cfg` at a
# trained one (e.g. from vqkd_vit-demo-p8_1xb32-coslr-20e_demo.py) for
# meaningful targets.
_base_ = ['../_base_/datasets/demo_pretrain.py', '../_base_/schedules/adamw_coslr_demo.py']

tiny = dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0)
model = dict(
    type='BEiTv2',
    data_preprocessor=dict(
        type='TwoViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        target_mean=[127.5, 127.5, 127.5],
        target_std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(type='BEiTViT', arch=tiny, img_size=64, patch_size=8, out_indices=[2, 3]),
    neck=dict(type='BEiTV2Neck', num_layers=2, early_layers=3, embed_dim=128, num_heads=4,
              depth=4),
    head=dict(type='TokenPredictionHead', embed_dim=128, vocab_size=64),
    tokenizer=dict(
        type='VQKD',
        encoder=dict(type='ViT', arch=dict(embed_dim=64, depth=2, num_heads=4), img_size=64,
                     patch_size=8, qkv_bias=False, qv_bias=True, out_type='raw'),
        decoder=dict(type='ViT', arch=dict(embed_dim=64, depth=1, num_heads=4), img_size=8,
                     patch_size=1, in_channels=16, qkv_bias=False, qv_bias=True,
                     out_type='raw'),
        num_tokens=64,
        codebook_dim=16,
        kmeans_init=False,
        teacher_dim=64))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResizedCropTwoViews', scale=64, second_scale=64,
         crop_ratio_range=(0.5, 1.0), interpolation='bicubic',
         second_interpolation='bicubic', backend='pillow'),
    dict(type='BlockwiseMaskGenerator', input_size=8, num_masking_patches=24,
         min_num_patches=4),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# The base runtime's hooks, plus the k-NN accuracy of the encoder on the demo
# val/ split (train/ as the memory bank) every 5 epochs: `knn/top1` in the log.
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='KNNEvalHook', interval=5),
]
