# The MAE recipe: AdamW (0.9, 0.95), base lr 1.5e-4 per 256 images at an
# effective batch of 4096, weight decay 0.05 except 1-D parameters (norms,
# biases) as the official main_pretrain.py (timm's add_weight_decay with no
# skip list: cls_token and mask_token are decayed; the sin-cos tables are
# fixed); 40 linear warm-up epochs then cosine to 0.
# Derived configs set `max_epochs` and `param_scheduler[1]` for their length.
max_epochs = 400
warmup_epochs = 40
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, eta_min=0.0, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# lr above is for 8 GPUs x 512 images; --auto-scale-lr rescales it linearly.
auto_scale_lr = dict(base_batch_size=4096, enable=False)
