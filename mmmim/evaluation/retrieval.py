"""Image-text retrieval: ITC ranking, ITM re-ranking of the top k, R@1/5/10 both ways.

As BLIP's ``evaluation`` / ``itm_eval`` (train_retrieval.py): every image
and caption is embedded once; for each image (text) the k most similar
texts (images) by ITC are scored again by ITM, and the final score is the
ITM match logit plus the ITC similarity (others stay at -100). Rows are
split over the ranks. ``RetrievalValLoop`` / ``RetrievalTestLoop`` run it
inside ``tools/train.py`` / ``tools/test.py``; ``RetrievalRecall`` turns the
ranks into the official ``txt_r1`` ... ``r_mean`` (and the ITC-only ones).

The model needs ``tokenize(texts)``, ``image_embeds(images)``,
``image_feat(embeds)``, ``text_feat(text)`` and ``itm_logits(embeds, ids,
mask)`` (mmmim's ``BLIP`` and ``BLIP2`` stage 1). An image feature
``[Q, D]`` (BLIP-2's query features) is scored against a text by the maximum
over its Q rows, as LAVIS's ``compute_sim_matrix``.
"""
import logging
from typing import Dict, List, Sequence

import torch
from mmengine.dist import broadcast_object_list, collect_results, get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop

from mmmim.registry import LOOPS, METRICS
from mmmim.utils import Progress


def best_rank(scores: torch.Tensor, positives: Sequence[int]) -> int:
    """Position (0 = first) of the best-placed positive in ``scores`` sorted descending."""
    order = torch.argsort(scores, descending=True)
    where = torch.nonzero(torch.isin(order, torch.as_tensor(list(positives))))
    return int(where.min())


def recall_at_k(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> Dict[int, float]:
    """Percentage of queries whose best positive is within the top k."""
    return {k: 100.0 * float((ranks < k).float().mean()) for k in ks}


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def itc_similarity(image_feats: torch.Tensor, text_feats: torch.Tensor,
                   batch_size: int = 64) -> torch.Tensor:
    """ITC similarities ``[N_img, N_txt]`` of image features ``[N_img, D]``, or
    ``[N_img, Q, D]`` (the maximum over the Q query features), and text features ``[N_txt, D]``."""
    if image_feats.dim() == 2:
        return image_feats @ text_feats.t()
    return torch.cat([torch.einsum('iqd,td->itq', image_feats[part], text_feats).max(-1).values
                      for part in _chunks(image_feats.shape[0], batch_size)])


@torch.no_grad()
def rerank(model, sims: torch.Tensor, image_embeds: torch.Tensor, text_ids: torch.Tensor,
           text_atts: torch.Tensor, rows: range, i2t: bool, k: int,
           batch_size: int = 128) -> torch.Tensor:
    """ITM + ITC scores ``[len(rows), N]`` of the top-k columns of ``sims`` rows (others -100).

    ``sims`` is ``[N_img, N_txt]`` for image->text (``i2t``) and
    ``[N_txt, N_img]`` for text->image.
    """
    k = min(k, sims.shape[1])
    out = torch.full((len(rows), sims.shape[1]), -100.0)
    device = next(model.parameters()).device
    for r, row in enumerate(rows):
        topk_sim, topk_idx = sims[row].topk(k)
        logits = []
        for part in _chunks(k, batch_size):
            idx = topk_idx[part]
            if i2t:
                embeds = image_embeds[row].unsqueeze(0).expand(len(idx), -1, -1)
                ids, atts = text_ids[idx], text_atts[idx]
            else:
                embeds = image_embeds[idx]
                ids = text_ids[row].unsqueeze(0).expand(len(idx), -1)
                atts = text_atts[row].unsqueeze(0).expand(len(idx), -1)
            logits.append(model.itm_logits(embeds.to(device), ids.to(device),
                                           atts.to(device))[:, 1].float().cpu())
        out[r, topk_idx] = torch.cat(logits) + topk_sim
    return out


@torch.no_grad()
def _embed_dataset(model, dataloader) -> List[dict]:
    """Per-image ITC features and tokens of this rank's share, in dataset order on every rank."""
    part = []
    progress = Progress(len(dataloader), 'retrieval: embedding images', 'batches')
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        images = data['inputs'] if 'inputs' in data else data['images']  # MultiModal...: images
        images = images[0] if isinstance(images, (list, tuple)) else images
        embeds = model.image_embeds(images)  # [B, N, C]
        feats = model.image_feat(embeds)  # [B, D] or [B, Q, D]
        for s, e, f in zip(data['data_samples'], embeds, feats):
            texts = s.get('texts') if isinstance(s, dict) else getattr(s, 'texts', None)
            if not texts:
                raise KeyError('retrieval needs "texts" in each data sample: CaptionDataset('
                               "per_image=True) and PackInputs(algorithm_keys=['texts', 'image_id'])")
            image_id = s.get('image_id') if isinstance(s, dict) else getattr(s, 'image_id', None)
            part.append(dict(embeds=e.cpu(), feat=f.float().cpu(), texts=list(texts),
                             image_id=image_id))
        progress.update()
    progress.close()
    items = collect_results(part, len(dataloader.dataset), device='cpu')
    holder = [items]
    broadcast_object_list(holder)
    return _drop_refetched(holder[0])


def _drop_refetched(items: List[dict]) -> List[dict]:
    """Keep each image once: the dataset draws another image in place of an unreadable one
    (skipped and counted by ``LoadImageOrSkip``), which would score that image twice."""
    seen, kept = set(), []
    for item in items:
        if item['image_id'] is None or item['image_id'] not in seen:
            kept.append(item)
            seen.add(item['image_id'])
    if len(kept) < len(items):
        print_log(f'retrieval: {len(items) - len(kept)} unreadable image(s) left out; '
                  f'{len(kept)} images ranked', logger='current', level=logging.WARNING)
    return kept


@torch.no_grad()
def evaluate_retrieval(model, dataloader, k_test: int = 256, text_batch: int = 256) -> dict:
    """This rank's image->text and text->image ranks (ITM re-ranked and ITC only).

    Returns ``dict(i2t=..., t2i=..., i2t_itc=..., t2i_itc=...)``, rank
    tensors of the image rows and text rows this rank scored.
    """
    if is_model_wrapper(model):
        model = model.module
    items = _embed_dataset(model, dataloader)
    texts, txt2img, img2txt = [], [], []
    for i, item in enumerate(items):
        img2txt.append(list(range(len(texts), len(texts) + len(item['texts']))))
        texts += item['texts']
        txt2img += [i] * len(item['texts'])
    ids, atts, text_feats = [], [], []
    for part in _chunks(len(texts), text_batch):
        tok = model.tokenize(texts[part])
        text_feats.append(model.text_feat(tok).float().cpu())
        ids.append(tok['input_ids'].cpu())
        atts.append(tok['attention_mask'].cpu())
    width = max(t.shape[1] for t in ids)  # batches padded to the longest ('longest' padding)
    ids = torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1])) for t in ids])
    atts = torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1])) for t in atts])
    image_feats = torch.stack([item['feat'] for item in items])  # [N_img, D] or [N_img, Q, D]
    image_embeds = torch.stack([item['embeds'] for item in items])  # [N_img, N, C]
    sims = itc_similarity(image_feats, torch.cat(text_feats))  # [N_img, N_txt]
    rank, world = get_dist_info()

    def rows(n):
        step = n // world + 1  # as the official split
        return range(rank * step, min(n, (rank + 1) * step))

    img_rows, txt_rows = rows(sims.shape[0]), rows(sims.shape[1])
    i2t = rerank(model, sims, image_embeds, ids, atts, img_rows, True, k_test)
    t2i = rerank(model, sims.t(), image_embeds, ids, atts, txt_rows, False, k_test)
    return dict(
        i2t=torch.tensor([best_rank(i2t[r], img2txt[row]) for r, row in enumerate(img_rows)]),
        t2i=torch.tensor([best_rank(t2i[r], [txt2img[row]]) for r, row in enumerate(txt_rows)]),
        i2t_itc=torch.tensor([best_rank(sims[row], img2txt[row]) for row in img_rows]),
        t2i_itc=torch.tensor([best_rank(sims[:, row], [txt2img[row]]) for row in txt_rows]))


@METRICS.register_module()
class RetrievalRecall(BaseMetric):
    """R@1/5/10 of text retrieval (``txt_r*``: image queries) and image retrieval (``img_r*``).

    Fed by the retrieval loops with each rank's ranks; also reports the
    ITC-only recalls (``itc_txt_r1`` ...), before ITM re-ranking.
    """
    default_prefix = 'retrieval'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        self.results += list(data_samples)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        out = {}
        for tag, (i2t, t2i) in (('', ('i2t', 't2i')), ('itc_', ('i2t_itc', 't2i_itc'))):
            txt = recall_at_k(torch.cat([r[i2t] for r in results]))
            img = recall_at_k(torch.cat([r[t2i] for r in results]))
            out.update({f'{tag}txt_r{k}': v for k, v in txt.items()})
            out.update({f'{tag}img_r{k}': v for k, v in img.items()})
            out[f'{tag}txt_r_mean'] = sum(txt.values()) / 3
            out[f'{tag}img_r_mean'] = sum(img.values()) / 3
            out[f'{tag}r_mean'] = (out[f'{tag}txt_r_mean'] + out[f'{tag}img_r_mean']) / 2
        return out


def _run(loop, stage: str, k_test: int) -> dict:
    runner = loop.runner
    runner.call_hook(f'before_{stage}')
    runner.call_hook(f'before_{stage}_epoch')
    runner.model.eval()
    ranks = evaluate_retrieval(runner.model, loop.dataloader, k_test)
    loop.evaluator.process(data_samples=[ranks], data_batch=None)
    metrics = loop.evaluator.evaluate(get_dist_info()[1])  # one record per rank
    runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
    runner.call_hook(f'after_{stage}')
    return metrics


@LOOPS.register_module()
class RetrievalValLoop(ValLoop):
    """Validation by image-text retrieval (``val_cfg=dict(type='RetrievalValLoop', k_test=256)``)."""

    def __init__(self, runner, dataloader, evaluator, k_test: int = 256, fp16: bool = False):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.k_test = k_test

    def run(self) -> dict:
        return _run(self, 'val', self.k_test)


@LOOPS.register_module()
class RetrievalTestLoop(TestLoop):
    """Testing by image-text retrieval (``test_cfg=dict(type='RetrievalTestLoop', k_test=256)``)."""

    def __init__(self, runner, dataloader, evaluator, k_test: int = 256, fp16: bool = False):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.k_test = k_test

    def run(self) -> dict:
        return _run(self, 'test', self.k_test)
