# BLIP-2 stage 1 on CLIP ViT-L/14 (LAVIS lavis/configs/models/blip2/blip2_pretrain_vitL.yaml:
# vit_model clip_L, 224 px, the tower frozen in fp16, 32 queries) with the recipe of
# pretrain_stage1.yaml: ITC + ITM + ITG, 16 GPUs x 100 images, lr 1e-4, 10 epochs.
# The tower as LAVIS's create_clip_vit_L builds it: 1024 wide, 16 heads, 21 of CLIP-L's 24 blocks,
# ln_pre, QuickGELU, qkv bias, no patch bias, LayerNorm eps 1e-5, no final norm.
#   data/pretrained/clip_vit_L.pth              LAVIS's CLIP ViT-L file (OpenAI CLIP names)
_base_ = ['blip2-stage1_eva-g-p14_16xb100-amp-coslr-10e_coco-vg-224.py']

model = dict(
    visual_encoder=dict(
        arch='clip-l',
        qkv_bias=True,
        qv_bias=False,
        patch_bias=False,
        pre_norm=True,
        act_layer='quick_gelu',
        norm_eps=1e-5),
    vit_checkpoint='data/pretrained/clip_vit_L.pth')
