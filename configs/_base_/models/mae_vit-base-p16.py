# MAE ViT-B/16 with the 512-d, 8-block decoder of the paper.
model = dict(
    type='MAE',
    mask_ratio=0.75,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(type='MAEViT', arch='base', img_size=224, patch_size=16),
    neck=dict(
        type='MAEDecoder',
        img_size=224,
        patch_size=16,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16),
    head=dict(type='PixelReconstructionHead', patch_size=16, norm_pix=True))
