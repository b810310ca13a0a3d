# COCO 5k image-text retrieval of LAVIS's COCO-finetuned BLIP-2 stage-1 model
# (lavis/projects/blip2/eval/ret_coco_eval.yaml, model blip2_coco.yaml): EVA ViT-g/14 at 364 px
# (fine-tuned, fp32), 32 queries; ITC similarity = maximum over the 32 query features, the top
# k_test = 128 re-ranked by ITM (itm_head averaged over the query outputs) plus ITC, R@1/5/10
# both ways (LAVIS compute_sim_matrix / retrieval task):
#   python tools/model_converters/convert.py data/pretrained/blip2_finetune_coco.pth \
#       data/pretrained/blip2_finetune_coco_mmmim.pth      # LAVIS keys -> mmmim's
#   bash tools/dist_test.sh THIS_CONFIG data/pretrained/blip2_finetune_coco_mmmim.pth 8
# Published (mmpretrain's converted model): TR@1 85.4 / IR@1 68.3.
_base_ = ['_base_/blip2_eva-g.py']

model = dict(
    type='BLIP2',
    embed_dim=256,
    max_txt_len=35,  # compute_sim_matrix tokenises the captions to 35 tokens
    visual_encoder=dict(img_size=364),
    qformer=dict(pretrained=None),  # every weight comes from the checkpoint
    vit_precision='fp32',
    freeze_vit=False,
    vit_checkpoint=None)

# blip_image_eval: bicubic resize to 364 x 364
test_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='Resize', scale=(364, 364), backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs', algorithm_keys=['texts'], meta_keys=['image_id']),
]
val_dataloader = dict(
    batch_size=32,  # batch_size_eval
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CaptionDataset', per_image=True, data_root='data/coco/',
        ann_file='annotations/coco_karpathy_val.json', pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='annotations/coco_karpathy_test.json'))
val_cfg = dict(type='RetrievalValLoop', k_test=128)
test_cfg = dict(type='RetrievalTestLoop', k_test=128)
val_evaluator = dict(type='RetrievalRecall')
test_evaluator = val_evaluator
