# Transfusion on image-caption pairs at 256x256, the paper's recipe (Zhou et al., 2024,
# arXiv 2408.11039; no official code). Text: the Llama-2 tokenizer (tokenizer.model or its
# tokenizer.json) plus <pad> <boi> <eoi> <image> <bos> <eos>. Images: centre-cropped to 256,
# encoded by a frozen VAE (AutoencoderKL, 8x down-sampling, 8 latent channels: 32x32x8) and cut
# into 2x2 latent patches (256 patches an image, left-to-right, top-to-bottom), between BOI / EOI;
# the timestep's embedding is added to every patch before the linear layer.
# Caption first 80% of the time; captioning-order images noised to t <= 500 at most.
# L = L_LM + 5 * L_DDPM; DDPM with 1000 steps, cosine schedule (diffusers squaredcos_cap_v2),
# epsilon prediction. AdamW lr 3e-4, betas (0.9, 0.95), eps 1e-8, weight decay 0.1, gradient
# clipping 1.0, 4000 warm-up steps, cosine to 1.5e-5, 250k steps, bf16. Sampling: 250 steps
# (DDIM here), classifier-free guidance 5 (the paper's controlled comparisons).
#
# Sequences of 4096 tokens, 2M tokens a batch: the pairs of a GPU's batch are packed into
# 4096-position rows (attention and positions per pair); at about 275 positions a COCO pair,
# 112 pairs pack into 8 rows, and 64 GPUs x 8 rows x 4096 = 2.1M tokens. The paper also mixes
# in text-only documents (Llama-2's corpus, 1:1 with image tokens); here every document is a pair.
# Caption dropout 0.2 for guidance is ours: the paper gives no rate.
# The VAE and tokenizer come from files you name (nothing downloads):
#   data/pretrained/transfusion-vae/{config.json,diffusion_pytorch_model.safetensors}
#   data/pretrained/llama-2-tokenizer/tokenizer.model
_base_ = ['../../_base_/default_runtime.py']

data_root = 'data/coco/'
model = dict(
    type='Transfusion',
    tokenizer='data/pretrained/llama-2-tokenizer',
    vae=dict(
        type='VAE',
        config='data/pretrained/transfusion-vae',
        checkpoint='data/pretrained/transfusion-vae'),
    patch_size=2,
    lambda_ddpm=5.0,
    caption_first_prob=0.8,
    caption_drop_prob=0.2,
    noise_limit=500,
    max_caption_tokens=128,
    max_seq_len=4096,
    diffusion=dict(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2',
                   prediction_type='epsilon', clip_sample=False),
    sampling=dict(num_inference_steps=250, guidance_scale=5.0, temperature=1.0,
                  max_new_tokens=64),
    generator=dict(type='TransfusionTransformer', arch='0.16b', attn_impl='auto'),
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True))

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs', algorithm_keys=['text'], meta_keys=['image_id']),
]
train_dataloader = dict(
    batch_size=112,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset',
        data_root=data_root,
        ann_file='annotations/captions_train2017.json',
        data_prefix=dict(img_path='train2017/'),
        pipeline=train_pipeline))

max_iters = 250000
warmup_iters = 4000
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=1.5e-5,
         by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=64 * 112, enable=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
