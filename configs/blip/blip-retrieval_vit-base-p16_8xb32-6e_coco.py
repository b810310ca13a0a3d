# BLIP image-text retrieval fine-tuning on COCO (Karpathy splits), as the official
# configs/retrieval_coco.yaml: from the pretrained model_base.pth, 384 px, 32 per GPU x 8,
# AdamW lr 1e-5 (wd 0.05) with a per-epoch cosine to 0, 6 epochs, grad checkpointing of
# the last 4 blocks of the image tower (vit_ckpt_layer 4), ITM negatives from all ranks, alpha 0.4 warmed up over the first epoch.
# Evaluation: ITC ranking, ITM re-ranking of the top 256, R@1/5/10 both ways.
_base_ = ['./_base_/blip_base.py']

data_root = 'data/coco/'
model = dict(
    type='BLIP',
    task='retrieval',
    vision_encoder=dict(type='ViT', arch='base', img_size=384, patch_size=16, out_type='raw',
                        with_cp=4),
    med=dict(arch='base', vocab_size=30524),
    tokenizer={{_base_.tokenizer}},
    embed_dim=256,
    queue_size=57600,
    momentum=0.995,
    alpha=0.4,
    negative_all_rank=True,
    data_preprocessor={{_base_.data_preprocessor}},
    init_cfg=dict(type='Pretrained', checkpoint='pretrained/model_base.pth'))

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,  # equal global batches: the queues take whole batches (official too)
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

max_epochs = 6
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.05))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=0),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='RetrievalValLoop', k_test=256)
val_evaluator = dict(type='RetrievalRecall')
test_cfg = dict(type='RetrievalTestLoop', k_test=256)
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='ITCAlphaWarmupHook', warmup_epochs=1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='retrieval/r_mean', rule='greater'))
auto_scale_lr = dict(base_batch_size=256, enable=False)
