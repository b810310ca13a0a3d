# The demo Transfusion with the paper's U-Net patchify instead of the linear one: U-Net down blocks
# (16 / 32 / 64 channels, one ResNet block a level, two halvings) turn each 32x32 image into 8x8
# tokens of 4x4 pixels, up blocks with the skip connections give the predicted noise. Everything
# else is transfusion-demo-p4_1xb32-1000i_demo-captions.py. 71 minutes on one CPU core.
_base_ = ['transfusion-demo-p4_1xb32-1000i_demo-captions.py']

model = dict(
    generator=dict(patch_embed=dict(type='UNetPatchEmbed', in_channels=3,
                                    block_out_channels=(16, 32, 64), layers_per_block=1,
                                    norm_num_groups=8)))
