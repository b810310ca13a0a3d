# Shared pieces of the BLIP-2 / InstructBLIP demos on the captioned demo data (docs/blip2.md):
# 64x64 images, a tiny ViT as the frozen image tower (random, seeded: nothing downloads), a tiny
# Q-Former (width 64, 2 layers, 8 queries), the WordPiece vocabulary of the demo captions for
# the Q-Former text, and the tiny OPT of tools/misc/train_demo_llm.py as the frozen LLM.
_base_ = ['../../_base_/default_runtime.py']

data_root = 'data/demo_captions/'
visual_encoder = dict(
    type='ViT',
    arch=dict(embed_dim=64, depth=2, num_heads=2, mlp_ratio=4.0),
    img_size=64,
    patch_size=8,
    qkv_bias=False,
    qv_bias=True,  # the EVA layout: q / v bias, no final norm, all tokens out
    final_norm=False,
    out_type='raw')
qformer = dict(
    num_query_tokens=8,
    cross_attention_freq=2,
    # initializer_range 0.1, not BERT's 0.02: trained from scratch (no BERT-base to start
    # from), a 0.02 init leaves the outputs nearly independent of the inputs for many steps
    bert=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
              max_position_embeddings=160, initializer_range=0.1))
llm = dict(path=data_root + 'opt-demo', dtype='fp32', output_end='\n')
# OpenAI CLIP normalisation, as LAVIS's BLIP-2 image processors
data_preprocessor = dict(
    type='MultiModalDataPreprocessor',
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True)
model = dict(
    visual_encoder=visual_encoder,
    qformer=qformer,
    tokenizer=data_root + 'vocab',
    vit_precision='fp32',
    data_preprocessor=data_preprocessor)

# No flips: the captions and questions name the quadrant of the shape.
load = [dict(type='LoadImageOrSkip'),
        dict(type='Resize', scale=(64, 64), backend='pillow', interpolation='bicubic')]
caption_pipeline = [*load, dict(type='PackInputs', algorithm_keys=['text'], meta_keys=['image_id'])]
vqa_keys = ['question', 'gt_answer', 'gt_answer_weight', 'gt_answers_all']
vqa_pipeline = [*load, dict(type='PackInputs', algorithm_keys=vqa_keys,
                            meta_keys=['question_id'])]
caption_train = dict(
    type='CaptionDataset',
    data_root=data_root,
    ann_file='annotations/captions_train.json',
    data_prefix=dict(img_path='images/train/'),
    pipeline=caption_pipeline)
vqa_train = dict(
    type='VQADataset',
    data_root=data_root,
    ann_file='annotations/vqa_train.json',
    data_prefix=dict(img_path='images/'),
    pipeline=vqa_pipeline)
caption_val = dict(
    type='CaptionDataset',
    per_image=True,
    data_root=data_root,
    ann_file='annotations/captions_val.json',
    data_prefix=dict(img_path='images/val/'),
    pipeline=[*load, dict(type='PackInputs', algorithm_keys=['texts'], meta_keys=['image_id'])])
vqa_val = dict(vqa_train, ann_file='annotations/vqa_val.json')
loader = dict(batch_size=32, num_workers=0, persistent_workers=False,
              collate_fn=dict(type='default_collate'))
train_dataloader = dict(loader, sampler=dict(type='DefaultSampler', shuffle=True))
val_loader = dict(loader, sampler=dict(type='DefaultSampler', shuffle=False))
caption_val_loader = dict(val_loader, dataset=caption_val)
vqa_val_loader = dict(val_loader, dataset=vqa_val)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # bypass_duplicate: the ITG head's decoder is tied to the word embeddings
    paramwise_cfg=dict(bias_decay_mult=0.0, norm_decay_mult=0.0, bypass_duplicate=True))
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(by_epoch=False, interval=300, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
