# A small Transfusion on the captioned demo data (docs/transfusion.md): the demo images at 32x32
# as 4x4 pixel patches (64 patches of 48 values in [-1, 1]; no VAE; linear patchify), captions
# through the BPE tokenizer trained on the demo captions (tools/misc/train_text_tokenizer.py).
# Width 256, depth 6, 8 heads (SwiGLU 768): 5.4M parameters. The paper's loss and data rules
# (caption first 80%, noise limit 500, lambda 5, cosine DDPM schedule); caption dropout 0.2 for
# guidance; 100 warm-up steps then cosine (eta_min = lr / 20 as the paper's 3e-4 -> 1.5e-5);
# fp32 on the CPU. Sampling: 50 DDIM steps with clipping to [-1, 1], guidance 3.0 (chosen for
# this data, not tuned). 60 minutes on one CPU core (OMP_NUM_THREADS=1, next to the U-Net demo).
_base_ = ['_base_/transfusion_captions-256.py']

data_root = 'data/demo_captions/'
model = dict(
    tokenizer='data/demo_captions/bpe',
    vae=None,
    patch_size=4,
    max_caption_tokens=32,
    max_seq_len=None,  # one pair a row (short rows on the CPU)
    diffusion=dict(clip_sample=True),
    sampling=dict(num_inference_steps=50, guidance_scale=3.0, max_new_tokens=24),
    generator=dict(arch=dict(_delete_=True, embed_dim=256, depth=6, num_heads=8),
                   attn_impl='sdpa'))

pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='Resize', scale=(32, 32), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs', algorithm_keys=['text'], meta_keys=['image_id']),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/captions_train.json',
        data_prefix=dict(img_path='images/train/'),
        pipeline=pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset',
        per_image=True,
        data_root=data_root,
        ann_file='annotations/captions_val.json',
        data_prefix=dict(img_path='images/val/'),
        pipeline=[*pipeline[:-1],
                  dict(type='PackInputs', algorithm_keys=['texts'], meta_keys=['image_id'])]))
val_evaluator = dict(type='CaptionMetric')
val_cfg = dict(type='ValLoop')

max_iters = 1000
warmup_iters = 100
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=5e-5,
         by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
