"""BLIP-2 stage-1 retrieval through mmmim.evaluation.retrieval against LAVIS's procedure.

The reference is LAVIS's ``compute_sim_matrix`` (blip2_models/blip2.py) and the retrieval
task's ``_report_metrics`` / ``itm_eval``, written out here with loops over HF transformers'
``Blip2ForImageTextRetrieval`` (tiny config, random weights) as the model: ITC similarity =
maximum over the query features, the top k_test re-ranked by the ITM match logit (averaged over
the queries) plus the ITC similarity, everything else at -100, R@1/5/10 from the best-placed
positive. mmmim's BLIP2 gets the same weights through ``from_hf``.
"""
import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from mmmim.checkpoint.blip2 import from_hf
from mmmim.evaluation.retrieval import RetrievalRecall, evaluate_retrieval, itc_similarity
from mmmim.models import BLIP2

from .test_blip2 import IMG, QF, VIS, Q, bert_vocab, qformer_cfg, randomize, vit_cfg  # noqa: F401

WORDS = ['a', 'red', 'blue', 'ring', 'disc', 'what', 'shape', 'is', 'in', 'the', 'image']
N_IMG, K_TEST = 12, 10  # 24 captions; k_test >= 10: R@10 is decided within the top k


def captions(n):
    rng = np.random.default_rng(0)
    return [[' '.join(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(2)]
            for _ in range(n)]


@pytest.fixture(scope='module')
def models(bert_vocab):  # noqa: F811
    from transformers import Blip2Config, Blip2ForImageTextRetrieval
    torch.manual_seed(0)
    m = BLIP2(visual_encoder=vit_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab, embed_dim=16,
              max_txt_len=10, vit_precision='fp32', ln_vision_eps=1e-6)
    qf = dict(QF, vocab_size=m.qformer.config.vocab_size, use_qformer_text_input=True)
    hf = Blip2ForImageTextRetrieval(Blip2Config(vision_config=VIS, qformer_config=qf,
                                                num_query_tokens=Q, image_text_hidden_size=16))
    randomize(hf)
    sd, _ = from_hf(hf.state_dict())
    m.load_state_dict(sd, strict=False)  # the ITG head and temp are not in HF's retrieval class
    return m.eval(), hf


@torch.no_grad()
def lavis_ranks(hf, images, texts, tokenize, k_test):
    """compute_sim_matrix + itm_eval with HF's model, one image / text at a time."""
    flat = [t for caps in texts for t in caps]
    txt2img = [i for i, caps in enumerate(texts) for _ in caps]
    img2txt = [[j for j, i in enumerate(txt2img) if i == n] for n in range(len(texts))]
    tok = tokenize(flat)
    ids, atts = tok['input_ids'], tok['attention_mask']
    itc = hf(pixel_values=images, input_ids=ids, attention_mask=atts,
             use_image_text_matching_head=False)
    sims = itc.logits_per_image  # [N_img, N_txt]: max over the queries

    def itm(image, i, a):
        out = hf(pixel_values=image, input_ids=i, attention_mask=a,
                 use_image_text_matching_head=True)
        return out.logits_per_image[:, 1]

    score_i2t = torch.full(sims.shape, -100.0)
    for i in range(sims.shape[0]):
        topk_sim, topk_idx = sims[i].topk(k_test)
        score_i2t[i, topk_idx] = itm(images[i:i + 1].repeat(k_test, 1, 1, 1), ids[topk_idx],
                                     atts[topk_idx]) + topk_sim
    score_t2i = torch.full(sims.t().shape, -100.0)
    for j in range(sims.shape[1]):
        topk_sim, topk_idx = sims[:, j].topk(k_test)
        score_t2i[j, topk_idx] = itm(images[topk_idx], ids[j:j + 1].repeat(k_test, 1),
                                     atts[j:j + 1].repeat(k_test, 1)) + topk_sim

    def ranks(scores, positives):
        out = []
        for row, pos in zip(scores, positives):
            inds = np.argsort(row.numpy())[::-1]
            out.append(min(np.where(inds == p)[0][0] for p in pos))
        return np.array(out)

    return dict(i2t=ranks(score_i2t, img2txt), t2i=ranks(score_t2i, [[i] for i in txt2img]),
                i2t_itc=ranks(sims, img2txt), t2i_itc=ranks(sims.t(), [[i] for i in txt2img]))


def lavis_recalls(r):
    """itm_eval's tr_r1 ... (image queries) and ir_r1 ... (text queries)."""
    out = {}
    for tag, (i2t, t2i) in (('', ('i2t', 't2i')), ('itc_', ('i2t_itc', 't2i_itc'))):
        for k in (1, 5, 10):
            out[f'{tag}txt_r{k}'] = 100.0 * np.mean(r[i2t] < k)
            out[f'{tag}img_r{k}'] = 100.0 * np.mean(r[t2i] < k)
    return out


def test_blip2_retrieval_matches_lavis_procedure(models):
    m, hf = models
    torch.manual_seed(2)
    images = torch.randn(N_IMG, 3, IMG, IMG)
    texts = captions(N_IMG)
    items = [(img, DataSample(metainfo=dict(texts=caps))) for img, caps in zip(images, texts)]
    loader = torch.utils.data.DataLoader(items, batch_size=3, collate_fn=lambda batch: dict(
        inputs=torch.stack([b[0] for b in batch]), data_samples=[b[1] for b in batch]))
    ours = evaluate_retrieval(m, loader, k_test=K_TEST)
    ref = lavis_ranks(hf, images, texts, m.tokenize, K_TEST)
    for key in ('i2t_itc', 't2i_itc'):
        assert ours[key].tolist() == ref[key].tolist(), key
    for key in ('i2t', 't2i'):  # outside the top k all scores are -100: the order is a tie
        assert np.minimum(ours[key].numpy(), K_TEST).tolist() == \
            np.minimum(ref[key], K_TEST).tolist(), key
    # the test can tell ITC from ITC + ITM: re-ranking moved some positives
    assert (ref['i2t'] != ref['i2t_itc']).any() or (ref['t2i'] != ref['t2i_itc']).any()
    metric = RetrievalRecall()
    got = metric.compute_metrics([ours])
    for key, value in lavis_recalls(ref).items():
        assert got[key] == pytest.approx(value), key


def test_itc_similarity_is_max_over_queries():
    torch.manual_seed(0)
    image_feats, text_feats = torch.randn(5, Q, 8), torch.randn(7, 8)
    ref = torch.tensor([[max(float(image_feats[i, q] @ text_feats[j]) for q in range(Q))
                         for j in range(7)] for i in range(5)])
    assert torch.allclose(itc_similarity(image_feats, text_feats, batch_size=2), ref, atol=1e-6)
    flat = torch.randn(5, 8)  # BLIP: one feature per image
    assert torch.allclose(itc_similarity(flat, text_feats), flat @ text_feats.t())
