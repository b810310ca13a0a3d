# BLIP-tiny on the captioned demo data (tools/misc/make_demo_data.py --layout captions):
# a 4-block ViT at 64x64 with 8x8 patches and a 3-layer MED (BERT) with the demo
# WordPiece vocabulary (tools/misc/train_text_tokenizer.py --kind wordpiece).
_base_ = ['../../_base_/default_runtime.py']

data_root = 'data/demo_captions/'
tokenizer = 'data/demo_captions/vocab'
# CLIP's normalisation, as the official BLIP transforms (0-255 scale).
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True)
vision_encoder = dict(
    type='ViT',
    arch=dict(embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
    img_size=64,
    patch_size=8,
    out_type='raw')
med = dict(arch=dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=512))

# The demo captions name the quadrant of the shape: no crops or flips here.
train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='PackInputs', algorithm_keys=['text', 'image_id']),
]
test_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='PackInputs', algorithm_keys=['texts', 'image_id']),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,  # equal global batches: the queues take whole batches (official too)
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset',
        data_root=data_root,
        ann_file='annotations/captions_train.json',
        data_prefix=dict(img_path='images/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset',
        data_root=data_root,
        ann_file='annotations/captions_val.json',
        data_prefix=dict(img_path='images/val'),
        per_image=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
