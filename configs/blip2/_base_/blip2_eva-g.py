# BLIP-2 on EVA-CLIP ViT-g/14 (LAVIS lavis/configs/models/blip2/*.yaml): 224 px, the tower frozen
# in fp16 with 39 of its 40 blocks, 32 queries, cross-attention every 2nd layer, the Q-Former
# from bert-base-uncased. Paths name local copies (nothing downloads):
#   data/pretrained/eva_vit_g.pth               LAVIS's EVA-CLIP ViT-g file
#   data/pretrained/bert-base-uncased/          HF BERT folder (config.json, weights, vocab.txt)
_base_ = ['../../_base_/default_runtime.py']

pretrained = 'data/pretrained/'
visual_encoder = dict(
    type='ViT',
    arch='eva-g',
    img_size=224,
    patch_size=14,
    qkv_bias=False,
    qv_bias=True,
    final_norm=False,
    out_type='raw',
    drop_path_rate=0.0)
qformer = dict(num_query_tokens=32, cross_attention_freq=2,
               pretrained=pretrained + 'bert-base-uncased')
data_preprocessor = dict(
    type='MultiModalDataPreprocessor',
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True)
model = dict(
    visual_encoder=visual_encoder,
    qformer=qformer,
    tokenizer=pretrained + 'bert-base-uncased',
    vit_precision='fp16',
    vit_checkpoint=pretrained + 'eva_vit_g.pth',
    data_preprocessor=data_preprocessor)

# blip2_image_train / blip_image_train: RandomResizedCrop(224, scale 0.5-1, bicubic) + flip
train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.5, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs', algorithm_keys=['text'], meta_keys=['image_id']),
]
# LAVIS stage-1/2 pretraining yaml data: COCO captions + Visual Genome (LAVIS JSON layout); the
# paper's 129M images add CC3M, CC12M, SBU and 115M LAION images with CapFilt captions.
data_root = 'data/'
train_dataloader = dict(
    batch_size=100,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type='CaptionDataset', data_root=data_root + 'coco/',
                 ann_file='annotations/coco_karpathy_train.json', pipeline=train_pipeline),
            dict(type='CaptionDataset', data_root=data_root + 'vg/',
                 ann_file='annotations/vg_caption.json', data_prefix=dict(img_path='images/'),
                 pipeline=train_pipeline),
        ]))

# run: linear_warmup_cosine_lr, init_lr 1e-4, min_lr 1e-5, warmup_lr 1e-6, weight_decay 0.05,
# 10 epochs, amp: AdamW as LAVIS's runner builds it (betas 0.9 / 0.999), no decay on 1-d params
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='float16',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0, bypass_duplicate=True))
max_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=5000),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=1, max_keep_ckpts=2))
log_processor = dict(by_epoch=True)
randomness = dict(seed=42, diff_rank_seed=True)
