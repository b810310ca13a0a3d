"""BLIP: losses against the official formulas written out, momentum, queues, negatives, tying."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample

from mmmim.engine.blip import ITCAlphaWarmupHook
from mmmim.models.multimodal import encode_text, sample_hard_negatives
from mmmim.registry import MODELS

CAPTIONS = ['a red disc in the upper left', 'a blue ring on a black to gray gradient',
            'a green striped square in the lower right', 'a yellow checkered square']


def tiny(vocab, task='pretrain', **kw):
    cfg = dict(type='BLIP', task=task, tokenizer=vocab, embed_dim=16, queue_size=8,
               vision_encoder=dict(type='ViT', arch=dict(embed_dim=32, depth=2, num_heads=2),
                                   img_size=32, patch_size=8, out_type='raw'),
               med=dict(arch='tiny', hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    cfg.update(kw)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def samples(ids=(1, 2, 3, 4)):
    return [DataSample(metainfo=dict(text=t, image_id=i)) for t, i in zip(CAPTIONS, ids)]


def images():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_decoder_shares_all_but_self_attention(demo_wordpiece_vocab):
    model = tiny(demo_wordpiece_vocab)
    enc, dec = model.text_encoder, model.text_decoder.bert
    same = lambda name: enc.get_parameter(name) is dec.get_parameter(name)  # noqa: E731
    assert same('embeddings.word_embeddings.weight')
    assert same('encoder.layer.1.crossattention.self.key.weight')  # 32-d image tokens in
    assert enc.get_parameter('encoder.layer.1.crossattention.self.key.weight').shape[1] == 32
    assert same('encoder.layer.0.intermediate.dense.weight') and same('encoder.layer.0.output.LayerNorm.bias')
    assert not same('encoder.layer.0.attention.self.query.weight')
    assert not same('encoder.layer.0.attention.output.dense.weight')
    # the LM head is the word embedding (HF's tie), and momentum copies are separate and frozen
    assert model.text_decoder.cls.predictions.decoder.weight is dec.embeddings.word_embeddings.weight
    assert not any(p.requires_grad for p in model.text_encoder_m.parameters())
    assert not model.train().text_encoder_m.training and not model.visual_encoder_m.training


def test_hard_negatives_exclude_positives():
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(6, 12, generator=g) * 3
    pos = torch.zeros(6, 12, dtype=torch.bool)
    pos[torch.arange(6), torch.arange(6)] = True
    pos[0, 7] = pos[3, 9] = True  # same image id elsewhere in the batch
    sim[pos] = 50.0  # positives would win every draw
    draws = torch.stack([sample_hard_negatives(sim, pos, generator=g) for _ in range(2000)])
    assert not pos.gather(1, draws.t()).any()
    # frequencies follow softmax(sim) over the negatives
    expected = F.softmax(sim.masked_fill(pos, float('-inf')), dim=1)[1]
    freq = torch.bincount(draws[:, 1], minlength=12).float() / 2000
    assert (freq - expected).abs().max() < 0.05
    # a row with only positives has nothing to draw
    with pytest.raises(ValueError, match='row 0 has no negative'):
        sample_hard_negatives(sim[:1, :2], torch.ones(1, 2, dtype=torch.bool))


def test_momentum_update_and_queue(demo_wordpiece_vocab):
    model = tiny(demo_wordpiece_vocab, task='retrieval')
    with torch.no_grad():
        model.vision_proj.weight.add_(1.0)  # online moves away from the momentum copy
    w, w_m = model.vision_proj.weight.detach().clone(), model.vision_proj_m.weight.clone()
    model.momentum_update()
    torch.testing.assert_close(model.vision_proj_m.weight, 0.995 * w_m + 0.005 * w)
    feats = F.normalize(torch.randn(4, 16), dim=1)
    model.dequeue_and_enqueue(feats, feats.flip(0), torch.tensor([5, 6, 7, 8]))
    torch.testing.assert_close(model.image_queue[:, :4], feats.t())
    torch.testing.assert_close(model.text_queue[:, :4], feats.flip(0).t())
    assert model.idx_queue[0, :4].tolist() == [5, 6, 7, 8] and int(model.queue_ptr) == 4
    model.dequeue_and_enqueue(feats, feats, torch.tensor([1, 2, 3, 4]))
    assert int(model.queue_ptr) == 0  # wrapped: 8 slots
    with pytest.raises(ValueError, match='not a multiple'):
        model.dequeue_and_enqueue(feats[:3], feats[:3], torch.tensor([1, 2, 3]))


def test_alpha_warmup_hook():
    class Runner:
        model = type('M', (), dict(alpha=0.4, itc_alpha=0.4))()
        train_dataloader = range(10)
        iter = 0
    hook, runner = ITCAlphaWarmupHook(warmup_epochs=2), Runner()
    seen = []
    for i in (0, 5, 10, 19, 20, 35):
        runner.iter = i
        hook.before_train_iter(runner, i)
        seen.append(runner.model.itc_alpha)
    # official pretrain.py: alpha * min(1, (epoch * len + i) / (2 * len))
    assert seen == pytest.approx([0.4 * min(1, i / 20) for i in (0, 5, 10, 19, 20, 35)])


def official_losses(model, imgs, texts, negatives, alpha):
    """BLIP_Pretrain.forward of the official models/blip_pretrain.py, written out.

    The MED calls go through ``encode_text`` / HF BERT (checked against HF's BLIP
    text model in tests/test_checkpoint); the hard negatives are those drawn by
    the model under test (``negatives``: image index per text, text index per image).
    """
    tok = model.tokenizer
    m = copy.deepcopy(model)
    with torch.no_grad():
        m.temp.clamp_(0.001, 0.5)
    text = tok(texts, padding='max_length', truncation=True, max_length=30, return_tensors='pt')
    image_embeds = m.visual_encoder(imgs)[0]
    image_feat = F.normalize(m.vision_proj(image_embeds[:, 0, :]), dim=-1)
    text_out = encode_text(m.text_encoder, text.input_ids, text.attention_mask)
    text_feat = F.normalize(m.text_proj(text_out[:, 0, :]), dim=-1)
    with torch.no_grad():
        for a, b in m.momentum_pairs():
            for (_, p), (_, p_m) in zip(sorted(a.named_parameters()), sorted(b.named_parameters())):
                p_m.data = p_m.data * m.momentum + p.data * (1. - m.momentum)
        image_feat_m = F.normalize(m.vision_proj_m(m.visual_encoder_m(imgs)[0][:, 0, :]), dim=-1)
        image_feat_all = torch.cat([image_feat_m.t(), m.image_queue.clone().detach()], dim=1)
        text_out_m = encode_text(m.text_encoder_m, text.input_ids, text.attention_mask)
        text_feat_m = F.normalize(m.text_proj_m(text_out_m[:, 0, :]), dim=-1)
        text_feat_all = torch.cat([text_feat_m.t(), m.text_queue.clone().detach()], dim=1)
        sim_i2t_m = image_feat_m @ text_feat_all / m.temp
        sim_t2i_m = text_feat_m @ image_feat_all / m.temp
        sim_targets = torch.zeros(sim_i2t_m.size())
        sim_targets.fill_diagonal_(1)
        sim_i2t_targets = alpha * F.softmax(sim_i2t_m, dim=1) + (1 - alpha) * sim_targets
        sim_t2i_targets = alpha * F.softmax(sim_t2i_m, dim=1) + (1 - alpha) * sim_targets
    sim_i2t = image_feat @ text_feat_all / m.temp
    sim_t2i = text_feat @ image_feat_all / m.temp
    loss_i2t = -torch.sum(F.log_softmax(sim_i2t, dim=1) * sim_i2t_targets, dim=1).mean()
    loss_t2i = -torch.sum(F.log_softmax(sim_t2i, dim=1) * sim_t2i_targets, dim=1).mean()
    loss_ita = (loss_i2t + loss_t2i) / 2

    encoder_input_ids = text.input_ids.clone()
    encoder_input_ids[:, 0] = tok.enc_token_id
    bs = imgs.size(0)
    output_pos = encode_text(m.text_encoder, encoder_input_ids, text.attention_mask, image_embeds)
    neg_image, neg_text = negatives
    image_embeds_neg = torch.stack([image_embeds[neg_image[b]] for b in range(bs)])
    text_ids_neg = torch.stack([encoder_input_ids[neg_text[b]] for b in range(bs)])
    text_atts_neg = torch.stack([text.attention_mask[neg_text[b]] for b in range(bs)])
    text_ids_all = torch.cat([encoder_input_ids, text_ids_neg], dim=0)
    text_atts_all = torch.cat([text.attention_mask, text_atts_neg], dim=0)
    image_embeds_all = torch.cat([image_embeds_neg, image_embeds], dim=0)
    output_neg = encode_text(m.text_encoder, text_ids_all, text_atts_all, image_embeds_all)
    vl_embeddings = torch.cat([output_pos[:, 0, :], output_neg[:, 0, :]], dim=0)
    vl_output = m.itm_head(vl_embeddings)
    itm_labels = torch.cat([torch.ones(bs, dtype=torch.long), torch.zeros(2 * bs, dtype=torch.long)])
    loss_itm = F.cross_entropy(vl_output, itm_labels)

    decoder_input_ids = text.input_ids.clone()
    decoder_input_ids[:, 0] = tok.bos_token_id
    decoder_targets = decoder_input_ids.masked_fill(decoder_input_ids == tok.pad_token_id, -100)
    logits = m.text_decoder(input_ids=decoder_input_ids, attention_mask=text.attention_mask,
                            encoder_hidden_states=image_embeds).logits
    loss_lm = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(
        logits[:, :-1, :].reshape(-1, logits.shape[-1]), decoder_targets[:, 1:].reshape(-1))
    return dict(loss_itc=loss_ita, loss_itm=loss_itm, loss_lm=loss_lm)


def test_pretrain_losses_match_official_formulas(demo_wordpiece_vocab, monkeypatch):
    model = tiny(demo_wordpiece_vocab).train()
    for mod in model.modules():
        mod.training = False  # no dropout on either side; the code path is the training one
    with torch.no_grad():
        model.temp.fill_(0.9)  # clamped to 0.5 first, as official
        model.text_proj.weight.mul_(1.5)  # momentum differs from online
    model.itc_alpha = 0.25
    drawn = []
    import mmmim.models.algorithms.blip as blip_module

    def record(sim, pos, eps=0.0, generator=None):
        assert eps == 1e-4 and pos.equal(torch.eye(4, dtype=torch.bool))  # pretraining: diagonal
        drawn.append(sample_hard_negatives(sim, pos, eps))
        return drawn[-1]
    monkeypatch.setattr(blip_module, 'sample_hard_negatives', record)
    ref_model = copy.deepcopy(model)
    losses = model.loss(images(), samples())
    ref = official_losses(ref_model, images(), CAPTIONS, drawn, 0.25)
    for k in ('loss_itc', 'loss_itm', 'loss_lm'):
        torch.testing.assert_close(losses[k], ref[k], atol=1e-5, rtol=1e-5, msg=k)
    assert float(model.temp.detach()) == pytest.approx(0.5)
    assert int(model.queue_ptr) == 4
    sum(losses.values()).backward()
    assert model.visual_encoder.cls_token.grad is not None and model.temp.grad is not None


def test_retrieval_targets_and_negatives_by_image_id(demo_wordpiece_vocab, monkeypatch):
    model = tiny(demo_wordpiece_vocab, task='retrieval').train()
    import mmmim.models.algorithms.blip as blip_module
    seen = []

    def record(sim, pos, eps=0.0, generator=None):
        seen.append((pos.clone(), eps))
        return sample_hard_negatives(sim, pos, eps)
    monkeypatch.setattr(blip_module, 'sample_hard_negatives', record)
    losses = model.loss(images(), samples(ids=(1, 2, 1, 3)))  # captions 0 and 2: one image
    assert set(losses) == {'loss_itc', 'loss_itm'}
    pos = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    assert all(p.equal(pos) and eps == 0.0 for p, eps in seen)
    assert model.idx_queue[0, :4].tolist() == [1, 2, 1, 3]


def test_caption_loss_masks_prompt_and_padding(demo_wordpiece_vocab):
    model = tiny(demo_wordpiece_vocab, task='caption', prompt='a picture of ').eval()
    n_prompt = len(model.tokenizer('a picture of ').input_ids) - 1  # [DEC] + prompt, no [SEP]
    assert model.text_encoder is None and model.prompt_length == n_prompt
    texts = CAPTIONS[:2]
    imgs = images()[:2]
    tok = model.tokenizer(['a picture of ' + t for t in texts], padding='longest',
                          return_tensors='pt')
    ids = tok.input_ids.clone()
    ids[:, 0] = model.tokenizer.bos_token_id
    logits = model.text_decoder(input_ids=ids, attention_mask=tok.attention_mask,
                                encoder_hidden_states=model.image_embeds(imgs)).logits
    targets = ids.masked_fill(ids == model.tokenizer.pad_token_id, -100)
    targets[:, :n_prompt] = -100
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets[:, 1:].reshape(-1),
                          label_smoothing=0.1)
    loss = model.loss(imgs, [DataSample(metainfo=dict(text=t)) for t in texts])['loss_lm']
    torch.testing.assert_close(loss, ref)


def test_generate_beam_and_nucleus(demo_wordpiece_vocab):
    model = tiny(demo_wordpiece_vocab, task='caption', prompt='a picture of ').eval()
    beams = model.generate(images()[:2], max_length=12, min_length=8)
    torch.manual_seed(0)
    sampled = model.generate(images()[:2], sample=True, max_length=12, min_length=8)
    for caps in (beams, sampled):  # the prompt is cut off
        assert len(caps) == 2 and all(isinstance(c, str) and c for c in caps)
        assert not any(c.startswith('a picture of') for c in caps)
    out = model.predict(images()[:2], [DataSample(), DataSample()])
    assert all(isinstance(s.pred_caption, str) for s in out)


def _gather_worker(rank, port, results):
    import torch.distributed as dist
    from mmmim.models.multimodal import all_gather_with_grad, concat_all_gather
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    x = torch.full((2, 3), float(rank + 1), requires_grad=True)
    gathered = all_gather_with_grad(x)
    (gathered * torch.arange(4.0).view(4, 1)).sum().backward()
    results[rank] = (concat_all_gather(x.detach()).tolist(), gathered.tolist(), x.grad.tolist())
    dist.destroy_process_group()


def test_gathers_across_two_ranks():
    import torch.multiprocessing as mp
    from ..conftest import free_port
    results = mp.Manager().dict()
    mp.start_processes(_gather_worker, args=(free_port(), results), nprocs=2, start_method='fork')
    for rank in (0, 1):
        no_grad, with_grad, grad = results[rank]
        assert no_grad == with_grad == [[1.0] * 3] * 2 + [[2.0] * 3] * 2
        # rank r's rows are rows 2r, 2r+1 of the gathered batch; both ranks' losses add up
        assert grad == [[2.0 * (2 * rank)] * 3, [2.0 * (2 * rank + 1)] * 3]
