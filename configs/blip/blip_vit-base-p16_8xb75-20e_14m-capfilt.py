# BLIP pretraining on the bootstrapped 14M set: the annotation files tools/misc/capfilt.py
# writes (web captions the ITM filter kept plus the kept synthetic captions).
_base_ = ['./blip_vit-base-p16_8xb75-20e_14m.py']

annotations = ['coco_karpathy_train.json', 'vg_caption.json', 'cc3m_capfilt.json',
               'cc12m_capfilt.json', 'sbu_capfilt.json']
train_dataloader = dict(
    dataset=dict(
        type='ConcatDataset',
        _delete_=True,
        datasets=[
            dict(type='CaptionDataset', data_root={{_base_.data_root}},
                 ann_file=f'annotations/{a}', data_prefix=dict(img_path='images'),
                 pipeline={{_base_.pretrain_pipeline}}) for a in annotations
        ]))
