# ImageNet-1K for MAE pretraining: labels are not used.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

# mmpretrain's MAE pipeline: full-size decode (cv2), crop, PIL bicubic resize, flip.
mmpretrain_train_pipeline = [
    dict(type='LoadImageOrSkip'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
# The fast path (mmmim/datasets/fast_decode.py, docs/benchmarks.md): the same
# crops and flips, decoded at reduced size where the crop allows it, resized
# with PIL's bicubic filter computed by torch; bad files are skipped and
# counted as by LoadImageOrSkip. To train with mmpretrain's pipeline instead:
#   train_dataloader = dict(dataset=dict(pipeline={{_base_.mmpretrain_train_pipeline}}))
train_pipeline = [
    dict(type='RandomResizedCropFromFile', scale=224, crop_ratio_range=(0.2, 1.0),
         interpolation='bicubic', flip_prob=0.5),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=512,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
