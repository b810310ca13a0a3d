# BLIP pretraining, ViT-B/16, 14M images (COCO, Visual Genome, CC3M, CC12M, SBU), as the
# official configs/pretrain.yaml: 224 px, 75 per GPU x 8, AdamW (wd 0.05), lr 3e-4 after
# 3000 warm-up steps from 1e-6, x0.9 per epoch, 20 epochs; queue 57,600, alpha 0.4
# warmed up over two epochs, momentum 0.995. Image tower from DeiT-B, MED from bert-base.
_base_ = ['./_base_/blip_base.py']

data_root = 'data/blip_pretrain/'
model = dict(
    type='BLIP',
    task='pretrain',
    vision_encoder=dict(
        type='ViT', arch='base', img_size=224, patch_size=16, out_type='raw', with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/deit_base_patch16_224-b5f2ef4d.pth',
                      prefix='backbone.')),
    med=dict(arch='base', vocab_size=30524, pretrained='pretrained/bert-base-uncased'),
    tokenizer={{_base_.tokenizer}},
    embed_dim=256,
    queue_size=57600,
    momentum=0.995,
    alpha=0.4,
    data_preprocessor={{_base_.data_preprocessor}})

# LAVIS / BLIP annotation JSON ([{"image", "caption"}]); images under data_root/images.
annotations = ['coco_karpathy_train.json', 'vg_caption.json', 'cc3m.json', 'cc12m.json',
               'sbu.json']
train_dataloader = dict(
    batch_size=75,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,  # equal global batches: the queues take whole batches (official too)
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(type='CaptionDataset', data_root=data_root, ann_file=f'annotations/{a}',
                 data_prefix=dict(img_path='images'), pipeline={{_base_.pretrain_pipeline}})
            for a in annotations
        ]))

max_epochs = 20
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 3e-4, by_epoch=False, begin=0, end=3000),
    dict(type='ExponentialLR', gamma=0.9, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
custom_hooks = [
    dict(type='RandomStateHook'),
    dict(type='SkippedImagesHook'),
    dict(type='ITCAlphaWarmupHook', warmup_epochs=2),
]
auto_scale_lr = dict(base_batch_size=600, enable=False)
