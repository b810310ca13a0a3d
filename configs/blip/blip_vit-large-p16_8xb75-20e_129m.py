# BLIP pretraining, ViT-L/16, 129M images: lr 2e-4, grad checkpointing in the image tower,
# stochastic depth 0.1 (the official create_vit for 'large'), image tower from ViT-L/16
# ImageNet-21k (timm's vit_large_patch16_224_in21k).
_base_ = ['./blip_vit-base-p16_8xb75-20e_129m.py']

model = dict(
    vision_encoder=dict(
        arch='large', with_cp=True, drop_path_rate=0.1,
        init_cfg=dict(checkpoint='pretrained/vit_large_patch16_224_in21k.pth')))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 2e-4, by_epoch=False, begin=0, end=3000),
    dict(type='ExponentialLR', gamma=0.9, by_epoch=True, begin=0, end=20),
]
