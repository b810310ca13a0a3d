# BLIP retrieval fine-tuning on Flickr30k (Karpathy splits), as configs/retrieval_flickr.yaml:
# the COCO recipe with ITM negatives from each rank's own batch and re-ranking of the top 128.
_base_ = ['./blip-retrieval_vit-base-p16_8xb32-6e_coco.py']

data_root = 'data/flickr30k/'
model = dict(negative_all_rank=False)
train_dataloader = dict(dataset=dict(data_root=data_root, ann_file='annotations/flickr30k_train.json'))
val_dataloader = dict(dataset=dict(data_root=data_root, ann_file='annotations/flickr30k_val.json'))
test_dataloader = dict(dataset=dict(data_root=data_root, ann_file='annotations/flickr30k_test.json'))
val_cfg = dict(type='RetrievalValLoop', k_test=128)
test_cfg = dict(type='RetrievalTestLoop', k_test=128)
