# BLIP-2 stage 1 (lavis/projects/blip2/train/pretrain_stage1.yaml): ITC + ITM + ITG, embed 256,
# 32 text tokens; 16 GPUs x 100 images, lr 1e-4 (5,000 warm-up steps from 1e-6), 10 epochs.
_base_ = ['_base_/blip2_eva-g.py']

model = dict(type='BLIP2', embed_dim=256, max_txt_len=32)
