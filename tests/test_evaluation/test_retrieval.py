"""Retrieval evaluation: the official itm_eval ranks, ITM re-ranking of the ITC top k."""
import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from mmmim.evaluation.retrieval import (RetrievalRecall, best_rank, evaluate_retrieval,
                                        recall_at_k, rerank)
from mmmim.registry import MODELS


def official_itm_eval(scores_i2t, scores_t2i, txt2img, img2txt):
    """itm_eval of the official train_retrieval.py, written out."""
    ranks = np.zeros(scores_i2t.shape[0])
    for index, score in enumerate(scores_i2t):
        inds = np.argsort(score)[::-1]
        rank = 1e20
        for i in img2txt[index]:
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    tr = [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]
    ranks = np.zeros(scores_t2i.shape[0])
    for index, score in enumerate(scores_t2i):
        inds = np.argsort(score)[::-1]
        ranks[index] = np.where(inds == txt2img[index])[0][0]
    ir = [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]
    return dict(txt_r1=tr[0], txt_r5=tr[1], txt_r10=tr[2], img_r1=ir[0], img_r5=ir[1], img_r10=ir[2])


def test_recall_matches_official_itm_eval():
    g = torch.Generator().manual_seed(0)
    n_img, per = 30, 3
    img2txt = [list(range(i * per, (i + 1) * per)) for i in range(n_img)]
    txt2img = [t // per for t in range(n_img * per)]
    i2t = torch.randn(n_img, n_img * per, generator=g)
    t2i = torch.randn(n_img * per, n_img, generator=g)
    for i, texts in enumerate(img2txt):  # make some queries easy
        i2t[i, texts[0]] += 2.0 * (i % 3)
    ref = official_itm_eval(i2t.numpy(), t2i.numpy(), txt2img, img2txt)
    ranks = dict(i2t=torch.tensor([best_rank(i2t[i], img2txt[i]) for i in range(n_img)]),
                 t2i=torch.tensor([best_rank(t2i[t], [txt2img[t]]) for t in range(len(txt2img))]))
    metric = RetrievalRecall()
    half = n_img // 2  # two ranks' records
    records = [dict(i2t=ranks['i2t'][:half], t2i=ranks['t2i'][:45], i2t_itc=ranks['i2t'][:half],
                    t2i_itc=ranks['t2i'][:45]),
               dict(i2t=ranks['i2t'][half:], t2i=ranks['t2i'][45:], i2t_itc=ranks['i2t'][half:],
                    t2i_itc=ranks['t2i'][45:])]
    out = metric.compute_metrics(records)
    for k, v in ref.items():
        assert out[k] == pytest.approx(v) and out['itc_' + k] == pytest.approx(v)
    assert out['r_mean'] == pytest.approx(sum(ref.values()) / 6)
    assert recall_at_k(torch.tensor([0, 4, 9, 10])) == {1: 25.0, 5: 50.0, 10: 75.0}


@pytest.fixture(scope='module')
def blip(demo_wordpiece_vocab):
    import mmmim  # noqa: F401  (mmpretrain's preprocessors in mmmim's scope)
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmim'):
        return MODELS.build(dict(
            type='BLIP', task='retrieval', tokenizer=demo_wordpiece_vocab, embed_dim=16,
            queue_size=8, med=dict(arch='tiny'),
            vision_encoder=dict(type='ViT', arch=dict(embed_dim=32, depth=2, num_heads=2),
                                img_size=64, patch_size=16, out_type='raw'),
            data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[128.0] * 3,
                                   std=[64.0] * 3, to_rgb=True))).eval()


def test_rerank_scores_only_the_top_k(blip):
    g = torch.Generator().manual_seed(1)
    embeds = torch.randn(3, 17, 32, generator=g)
    tok = blip.tokenize(['a red disc', 'a blue ring in the upper left', 'a green square', 'a ring'])
    sims = torch.randn(3, 4, generator=g)
    with torch.no_grad():
        full = torch.stack([blip.itm_logits(embeds[i].expand(4, -1, -1), tok['input_ids'],
                                            tok['attention_mask'])[:, 1] for i in range(3)]) + sims
    torch.testing.assert_close(rerank(blip, sims, embeds, tok['input_ids'], tok['attention_mask'],
                                      range(3), True, k=256), full)
    top2 = rerank(blip, sims, embeds, tok['input_ids'], tok['attention_mask'], range(1, 3), True, k=2)
    for r, row in enumerate((1, 2)):
        keep = sims[row].topk(2).indices
        torch.testing.assert_close(top2[r, keep], full[row, keep])
        assert (top2[r].sort().values[:2] == -100).all()
    t2i = rerank(blip, sims.t(), embeds, tok['input_ids'], tok['attention_mask'], range(4), False, k=3)
    for t in range(4):
        keep = sims[:, t].topk(3).indices
        torch.testing.assert_close(t2i[t, keep], full[keep, t])


def build_loader(root):
    return Runner.build_dataloader(dict(
        batch_size=5, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='CaptionDataset', data_root=root,
                     ann_file='annotations/captions_val.json', data_prefix=dict(img_path='images/val'),
                     per_image=True, indices=12,
                     pipeline=[dict(type='LoadImageOrSkip'),
                               dict(type='PackInputs', algorithm_keys=['texts', 'image_id'])])))


def test_evaluate_retrieval_on_demo_val(blip, demo_captions):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmmim'):
        loader = build_loader(demo_captions)
    ranks = evaluate_retrieval(blip, loader, k_test=256)
    assert len(ranks['i2t']) == 12 and len(ranks['t2i']) == 24  # every image and caption ranked
    # brute force: ITM + ITC for every pair
    data = [blip.data_preprocessor(d, False) for d in loader]
    imgs = torch.cat([d['inputs'] for d in data])
    texts = [t for d in data for s in d['data_samples'] for t in s.texts]
    with torch.no_grad():
        embeds = blip.image_embeds(imgs)
        tok = blip.tokenize(texts)
        sims = blip.image_feat(embeds) @ blip.text_feat(tok).t()
        itm = torch.stack([blip.itm_logits(embeds[i].expand(len(texts), -1, -1), tok['input_ids'],
                                           tok['attention_mask'])[:, 1] for i in range(12)])
    scores = (itm + sims).numpy()
    img2txt = [[2 * i, 2 * i + 1] for i in range(12)]
    ref = official_itm_eval(scores, scores.T, [t // 2 for t in range(24)], img2txt)
    out = RetrievalRecall().compute_metrics([ranks])
    for k, v in ref.items():
        assert out[k] == pytest.approx(v), k
    ref_itc = official_itm_eval(sims.numpy(), sims.numpy().T, [t // 2 for t in range(24)], img2txt)
    assert out['itc_txt_r1'] == pytest.approx(ref_itc['txt_r1'])


def test_an_unreadable_image_is_left_out_not_scored_twice(blip, demo_captions, tmp_path):
    """The dataset draws another image for an unreadable one; that image is ranked once."""
    import json
    import os.path as osp
    import shutil
    from mmengine.registry import DefaultScope
    from mmmim.datasets import LoadImageOrSkip, load_caption_annotations
    src = osp.join(demo_captions, 'annotations', 'captions_val.json')
    entries = load_caption_annotations(src)[:6]
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'images' / 'val').mkdir(parents=True)
    for e in entries:
        shutil.copy(osp.join(demo_captions, 'images', 'val', e['image']), tmp_path / 'images' / 'val')
    bad = tmp_path / 'images' / 'val' / entries[2]['image']
    bad.write_bytes(bad.read_bytes()[:64])
    (tmp_path / 'annotations' / 'captions_val.json').write_text(json.dumps(
        [dict(image=e['image'], caption=e['captions'], image_id=e['image_id']) for e in entries]))
    before = LoadImageOrSkip.num_skipped()
    with DefaultScope.overwrite_default_scope('mmmim'):
        loader = build_loader(str(tmp_path))
    torch.manual_seed(0)
    ranks = evaluate_retrieval(blip, loader, k_test=256)
    assert LoadImageOrSkip.num_skipped() > before
    assert len(ranks['i2t']) == 5 and len(ranks['t2i']) == 10  # 5 readable images, 2 captions each
