# The BEiT / BEiT v2 / CAE pretraining schedule: AdamW lr 1.5e-3 (no batch
# scaling) at batch 2048, betas (0.9, 0.999), weight decay 0.05 except 1-D
# parameters (norms, biases, q / v biases, layer scales) and the class token
# as the official optimizer groups, gradient clipping 3.0, bf16 AMP, linear
# warm-up then cosine to 1e-5. Derived configs set `max_epochs` and
# `param_scheduler` for their length.
max_epochs = 800
warmup_epochs = 10
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'q_bias': dict(decay_mult=0.0),
            'v_bias': dict(decay_mult=0.0),
            'gamma_': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=2048, enable=False)
