# BLIP pretraining, ViT-B/16, 129M images: the 14M set plus LAION-115M (the official
# laion_path, with the captions BLIP's CapFilt bootstrapped).
_base_ = ['./blip_vit-base-p16_8xb75-20e_14m.py']

annotations = ['coco_karpathy_train.json', 'vg_caption.json', 'cc3m.json', 'cc12m.json',
               'sbu.json', 'laion_115m.json']
train_dataloader = dict(
    dataset=dict(
        type='ConcatDataset',
        _delete_=True,
        datasets=[
            dict(type='CaptionDataset', data_root={{_base_.data_root}},
                 ann_file=f'annotations/{a}', data_prefix=dict(img_path='images'),
                 pipeline={{_base_.pretrain_pipeline}}) for a in annotations
        ]))
