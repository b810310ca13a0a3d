# The bundled demo images (tools/misc/make_demo_data.py) for pretraining
# demos; the method's config sets `train_dataloader.dataset.pipeline`.
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='CustomDataset', data_root='data/demo/', data_prefix='train', with_label=False))
