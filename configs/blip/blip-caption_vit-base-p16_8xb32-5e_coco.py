# BLIP captioning fine-tuning on COCO (Karpathy splits), as configs/caption_coco.yaml: from
# model_base.pth, 384 px, prompt "a picture of ", 32 per GPU x 8, AdamW lr 1e-5 (wd 0.05),
# per-epoch cosine to 0, 5 epochs; beam search 3, max 20 / min 5 tokens; BLEU-4 and CIDEr.
_base_ = ['./_base_/blip_base.py']

data_root = 'data/coco/'
model = dict(
    type='BLIP',
    task='caption',
    vision_encoder=dict(type='ViT', arch='base', img_size=384, patch_size=16, out_type='raw'),
    med=dict(arch='base', vocab_size=30524),
    tokenizer={{_base_.tokenizer}},
    prompt='a picture of ',
    generation=dict(num_beams=3, max_length=20, min_length=5),
    data_preprocessor={{_base_.data_preprocessor}},
    init_cfg=dict(type='Pretrained', checkpoint='pretrained/model_base.pth'))

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,  # as the official training loaders
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset', data_root=data_root,
        ann_file='annotations/coco_karpathy_train.json', data_prefix=dict(img_path='images'),
        pipeline={{_base_.finetune_pipeline}}))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset', data_root=data_root, ann_file='annotations/coco_karpathy_val.json',
        data_prefix=dict(img_path='images'), per_image=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = dict(
    batch_size=64,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset', data_root=data_root, ann_file='annotations/coco_karpathy_test.json',
        data_prefix=dict(img_path='images'), per_image=True, pipeline={{_base_.test_pipeline}}))

max_epochs = 5
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.05))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=0),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='CaptionMetric')
test_cfg = dict(type='TestLoop')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='caption/CIDEr', rule='greater'))
auto_scale_lr = dict(base_batch_size=256, enable=False)
