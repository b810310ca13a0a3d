# BLIP-2 stage 1 (ITC + ITM + ITG) on the captioned demo data (docs/blip2.md): the tiny frozen
# ViT and a tiny Q-Former of _base_/blip2_demo.py, 32 text tokens, embed 64. The LAVIS stage-1
# recipe (AdamW, weight decay 0.05, linear warm-up from 1% then cosine to 10% of the lr),
# shortened to 600 iterations with lr 5e-4 for the tiny model; fp32 on the CPU.
_base_ = ['_base_/blip2_demo.py']

model = dict(type='BLIP2', embed_dim=64, max_txt_len=32)
train_dataloader = dict(dataset={{_base_.caption_train}})

max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters - 50, eta_min=5e-5, by_epoch=False,
         begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
# Zero-shot retrieval on the 64 val images / 128 captions: ITC (maximum over the queries), the
# top k_test re-ranked by ITM, as LAVIS's compute_sim_matrix (`retrieval/txt_r1` ...).
val_dataloader = {{_base_.caption_val_loader}}
test_dataloader = val_dataloader
val_cfg = dict(type='RetrievalValLoop', k_test=16)
test_cfg = dict(type='RetrievalTestLoop', k_test=16)
val_evaluator = dict(type='RetrievalRecall')
test_evaluator = val_evaluator
