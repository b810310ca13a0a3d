# A small RAR on the demo tokens, class-conditional on the 4 demo classes (docs/rar.md):
# tokens of configs/rar/maskgit-vqgan-demo-f4_1xb16-3000i_demo.py (8x8 = 64 tokens of 256 codes)
# made by tools/misc/tokenize_images.py (each image and its flip). The official recipe with the
# schedule compressed: r = 1 until 50% of the steps, linear to 0 at 75% (125k / 187.5k of 250k
# officially), 100 warm-up steps then cosine, class-label dropout 0.1; fp32 on the CPU.
# Generator: width 128, depth 4, 4 heads; 1.59M parameters. Sampling: guidance 3.0 (chosen for
# this data, not tuned), power 1.0, temperature 1.0. About 20 CPU minutes (OMP_NUM_THREADS=1).
_base_ = ['_base_/rar_in1k-256.py']

tokenizer_work_dir = 'work_dirs/maskgit_vqgan_demo'
model = dict(
    generator=dict(
        arch=dict(_delete_=True, embed_dim=128, depth=4, num_heads=4),
        codebook_size=256,
        num_classes=4,
        image_seq_len=64),
    tokenizer=dict(
        hidden_channels=16,
        channel_mult=(1, 1, 2),
        num_res_blocks=1,
        z_channels=32,
        num_embeddings=256,
        num_groups=8,
        init_cfg=dict(checkpoint=f'{tokenizer_work_dir}/iter_3000.pth')),
    sampling=dict(guidance_scale=3.0, guidance_scale_pow=1.0, temperature=1.0))

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        ann_file='work_dirs/rar_demo/tokens_train.npz',
        image_seq_len=64,
        codebook_size=256,
        num_classes=4))

max_iters = 1200
warmup_iters = 100
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.96), weight_decay=0.03),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        norm_decay_mult=0.0,
        custom_keys={
            'embed': dict(decay_mult=0.0),
            'adaln_before_head': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=1e-5,
         by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters)
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='RandomnessAnnealingHook', anneal_start=600, anneal_end=900),
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=600, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
