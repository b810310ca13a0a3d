# Fine-tuning the demo BEiT on the demo images' four classes: the BEiT recipe
# (per-layer relative position tables expanded from the shared pretraining
# one, layer scale, q / v biases, mean pooling) at 64x64 for a few CPU
# minutes. The checkpoint comes from the demo pretraining:
#   python tools/train.py configs/beit/beit_vit-demo-p8_1xb32-coslr-20e_demo.py \
#       --work-dir work_dirs/beit_demo
# (any official-layout BEiT file of the same shape loads as well).
_base_ = 'beit-vit-base-p16_8xb128-amp-coslr-100e_in1k.py'
data_root = 'data/demo'
model = dict(
    data_preprocessor=dict(num_classes=4),
    backbone=dict(
        arch=dict(_delete_=True, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
        img_size=64,
        patch_size=8,
        init_cfg=dict(checkpoint='work_dirs/beit_demo/epoch_20.pth')),
    head=dict(num_classes=4, in_channels=128))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator
max_epochs = 10
warmup_epochs = 1
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',  # fp32 on the CPU
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='mmmim.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=5))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
auto_scale_lr = dict(base_batch_size=32)
