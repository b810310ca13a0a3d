# Zero-shot Flickr30k retrieval with the COCO-finetuned model (the official README's zero-shot
# transfer: retrieval_flickr.yaml --evaluate with model_base_retrieval_coco.pth):
#   bash tools/dist_test.sh THIS_CONFIG pretrained/model_base_retrieval_coco.pth 8
_base_ = ['./blip-retrieval_vit-base-p16_8xb32-6e_flickr30k.py']

model = dict(init_cfg=None)
