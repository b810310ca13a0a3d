# Transfusion 7b with the U-Net patchify (the paper's largest model, Table 9, uses it): U-Net down
# blocks turn each 32x32x8 latent into 16x16 tokens of width 4096, up blocks (with the U-Net's skip
# connections) turn the transformer's outputs into the predicted noise. Two levels of 768 / 1024
# channels, two ResNet blocks a level: 0.26B parameters with the projections, as the 0.27B the
# paper reports (it gives no widths). The rest is the FSDP 7b recipe.
_base_ = ['transfusion-7b-p2_64xb112-bf16-fsdp-250ki_captions-256.py']

model = dict(
    patch_size=2,
    generator=dict(patch_embed=dict(type='UNetPatchEmbed', in_channels=8,
                                    block_out_channels=(768, 1024), layers_per_block=2)))
