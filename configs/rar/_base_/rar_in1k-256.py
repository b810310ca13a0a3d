# RAR on ImageNet-256 as the official recipe (bytedance/1d-tokenizer
# configs/training/generator/rar.yaml): pre-tokenised ImageNet (MaskGIT-VQGAN
# f16, 256x256 -> 16x16 codes, each image and its flip), AdamW lr 4e-4,
# betas (0.9, 0.96), weight decay 0.03 (none on biases, norms, embeddings and
# the head's AdaLN, as the official exclusion rule), 62.5k linear warm-up
# steps then cosine to 1e-5, 250k steps at batch 2048 (32 x 64), bf16, grad
# clip 1.0, class-label dropout 0.1, r = 1 until 125k, linear to 0 at 187.5k.
# Tokenizer: MaskGIT-VQGAN f16, 54.5M parameters (frozen; decodes samples).
#
# Data: `python tools/misc/tokenize_images.py configs/rar/rar-b_32xb64-bf16-250ki_in1k-256.py
#   data/imagenet/train data/imagenet/tokens/maskgit-vqgan-f16_train.npz
#   --checkpoint data/pretrained/maskgit-vqgan-imagenet-f16-256.bin`
# or the official pretokenized .jsonl as train_dataloader.dataset.ann_file.
_base_ = ['../../_base_/default_runtime.py']

tokenizer_ckpt = 'data/pretrained/maskgit-vqgan-imagenet-f16-256.bin'
model = dict(
    type='RAR',
    generator=dict(
        type='RARTransformer',
        arch='b',
        codebook_size=1024,
        num_classes=1000,
        image_seq_len=256,
        drop=0.1,
        attn_drop=0.1),
    tokenizer=dict(
        type='MaskGITVQGAN',  # the f16 architecture is the default
        init_cfg=dict(type='Pretrained', checkpoint=tokenizer_ckpt)),
    class_label_dropout=0.1,
    sampling=dict(guidance_scale=16.0, guidance_scale_pow=2.75, temperature=1.0))

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='TokenDataset',
        ann_file='data/imagenet/tokens/maskgit-vqgan-f16_train.npz',
        image_seq_len=256,
        codebook_size=1024,
        num_classes=1000))

max_iters = 250000
warmup_iters = 62500
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.96), weight_decay=0.03),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        norm_decay_mult=0.0,
        custom_keys={
            'embed': dict(decay_mult=0.0),  # embeddings, pos_embed, target-aware, timesteps
            'adaln_before_head': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=1e-5,
         by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=2048, enable=False)

custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='RandomnessAnnealingHook', anneal_start=125000, anneal_end=187500),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=42, diff_rank_seed=True)
