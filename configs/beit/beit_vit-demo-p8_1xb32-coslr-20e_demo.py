# BEiT v1 on the bundled demo images (tools/misc/make_demo_data.py): a small
# ViT at 64x64 with 8x8 patches. The official DALL-E encoder is not bundled,
# so the demo tokenizer is a small randomly initialised dVAE encoder (fixed by
# the run's seed). Untrained, it puts most demo patches into a few codes: the
# run exercises the pipeline; point `tokenizer.init_cfg` at encoder.pkl for
# real targets.
_base_ = ['../_base_/datasets/demo_pretrain.py', '../_base_/schedules/adamw_coslr_demo.py']

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# The base runtime's hooks, plus the k-NN accuracy of the encoder on the demo
# val/ split (train/ as the memory bank) every 5 epochs: `knn/top1` in the log.
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='KNNEvalHook', interval=5),
]
