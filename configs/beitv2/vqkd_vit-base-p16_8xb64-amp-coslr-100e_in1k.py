# VQ-KD tokenizer of BEiT v2 (Peng et al., 2022), the official recipe: ViT-B/16
# encoder, 8192 x 32 l2-normalised codebook (EMA 0.99, k-means init), decoder
# regressing the teacher's patch features with a cosine loss; batch 512, AdamW
# lr 2e-4 (0.9, 0.99), weight decay 1e-4, 10 warm-up epochs, cosine to 1e-5,
# 100 epochs, random resized crop + flip.
# Teacher: any registered ViT with its weights. This config uses the paper's
# DINO ViT-B/16 variant (a plain ViT; 768-d targets, ImageNet normalisation,
# decoder of 1 block), e.g. timm's / the official DINO file converted with
# tools/model_converters/convert.py. The paper's CLIP-B/16 teacher has a
# different block layout (pre-norm stem, projection) and is not bundled.
_base_ = ['../_base_/datasets/imagenet_pretrain.py', '../_base_/default_runtime.py']

teacher_path = 'data/teachers/dino_vitbase16_pretrain.pth'
model = dict(
    type='VQKD',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    encoder=dict(type='ViT', arch='base', img_size=224, patch_size=16, qkv_bias=False,
                 qv_bias=True, out_type='raw'),
    decoder=dict(type='ViT', arch=dict(embed_dim=768, depth=1, num_heads=12), img_size=14,
                 patch_size=1, in_channels=32, qkv_bias=False, qv_bias=True, out_type='raw'),
    num_tokens=8192,
    codebook_dim=32,
    decay=0.99,
    kmeans_init=True,
    teacher_dim=768,
    teacher=dict(type='ViT', arch='base', img_size=224, patch_size=16, out_type='raw',
                 init_cfg=dict(type='Pretrained', checkpoint=teacher_path, prefix='')),
    teacher_mean=[123.675, 116.28, 103.53],
    teacher_std=[58.395, 57.12, 57.375])

train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))

max_epochs = 100
warmup_epochs = 10
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.99), weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'q_bias': dict(decay_mult=0.0),
            'v_bias': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=512, enable=False)
