"""Transfusion: the mixed-modal mask, the Llama blocks, the loss, the schedule and sampling."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmim.models.algorithms.transfusion import patchify, unpatchify
from mmmim.models.layers.mixed_modal_mask import mixed_modal_block_mask, mixed_modal_mask

from ..conftest import REPO

TINY = dict(type='TransfusionTransformer', arch=dict(embed_dim=32, depth=2, num_heads=4))


def brute_force_mask(spans, length):
    """The mask written out position by position. ``spans``: list of (kind, size) in order,
    kind 'text', 'image' or 'pad' (padding at the end)."""
    kind, image = [], []
    for n, (k, size) in enumerate(spans):
        kind += [k] * size
        image += [n if k == 'image' else None] * size
    kind += ['pad'] * (length - len(kind))
    image += [None] * (length - len(image))
    mask = torch.zeros(length, length, dtype=torch.bool)
    for q in range(length):
        for k in range(length):
            if q == k:
                mask[q, k] = True
            elif kind[k] == 'pad':
                mask[q, k] = False
            elif k < q:
                mask[q, k] = True
            else:
                mask[q, k] = image[q] is not None and image[q] == image[k]
    return mask


def encode_spans(spans, length):
    ids, valid, next_id = [], [], 0
    for k, size in spans:
        if k == 'image':
            ids += [next_id] * size
            next_id += 1
        else:
            ids += [-1] * size
        valid += [k != 'pad'] * size
    ids += [-1] * (length - len(ids))
    valid += [False] * (length - len(valid))
    return torch.tensor(ids), torch.tensor(valid)


SEQS = [
    [('text', 7)],  # no image, padded
    [('text', 3), ('image', 4), ('text', 2)],  # one image
    [('text', 2), ('image', 3), ('text', 1), ('image', 4), ('image', 2), ('text', 2)],  # three
]


def test_mask_equals_brute_force():
    L = 20
    ids, valid = zip(*(encode_spans(s, L) for s in SEQS))
    mask = mixed_modal_mask(torch.stack(ids), torch.stack(valid))
    assert mask.shape == (3, 1, L, L)
    for b, spans in enumerate(SEQS):
        assert torch.equal(mask[b, 0], brute_force_mask(spans, L)), spans
    # the last rows alone (a KV-cached step) are the same rows of the full mask
    part = mixed_modal_mask(torch.stack(ids), torch.stack(valid), num_queries=6)
    assert torch.equal(part, mask[:, :, -6:])


def test_flex_block_mask_agrees_with_sdpa():
    """FlexAttention (eager on the CPU, unfused) with the block mask gives SDPA's result with
    the boolean mask; 150 positions span two 128-blocks, so block sparsity is exercised."""
    from mmmim.models.layers.llama import LlamaAttention
    torch.manual_seed(0)
    L = 150
    spans = [[('text', 20), ('image', 64), ('text', 10), ('image', 40), ('text', 6)],
             [('text', 5), ('image', 100), ('text', 3)]]
    ids, valid = zip(*(encode_spans(s, L) for s in spans))
    ids, valid = torch.stack(ids), torch.stack(valid)
    attn = LlamaAttention(32, 4)
    x = torch.randn(2, L, 32)
    pos = torch.arange(L).repeat(2, 1)
    with torch.no_grad():  # FlexAttention has no backward on the CPU
        dense = attn(x, pos, mixed_modal_mask(ids, valid))
        flex = attn(x, pos, mixed_modal_block_mask(ids, valid))
    torch.testing.assert_close(flex, dense, atol=1e-5, rtol=1e-5)


def test_blocks_equal_hf_llama():
    """Text only, the transformer is Llama: same hidden states as HF ``LlamaModel``."""
    from transformers import LlamaConfig, LlamaModel

    from mmmim.models.generators.transfusion import TransfusionTransformer
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5,
                      rope_theta=10000.0, max_position_embeddings=64, attn_implementation='eager')
    hf = LlamaModel(cfg).eval()
    ours = TransfusionTransformer(arch=dict(embed_dim=32, depth=2, num_heads=4), vocab_size=50,
                                  patch_dim=8, ffn_dim=96).eval()
    sd = {k.replace('layers.', 'blocks.'): v for k, v in hf.state_dict().items()}
    missing, unexpected = ours.load_state_dict(sd, strict=False)
    assert not unexpected
    assert all(k.startswith(('lm_head', 'patch_', 'time_embed')) for k in missing), missing
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        ref = hf(ids).last_hidden_state
        no_image = torch.full_like(ids, -1)
        h = ours.run(ours.embed_tokens(ids), torch.arange(12).repeat(2, 1),
                     mixed_modal_mask(no_image))
    torch.testing.assert_close(h, ref, atol=1e-5, rtol=1e-5)


def test_paper_sizes_have_their_parameter_counts():
    """Table 2's shapes with the Llama-2 vocabulary give 0.16B ... 7B parameters."""
    from mmmim.models.generators.transfusion import ARCHS, TransfusionTransformer
    expected = {'0.16b': 0.16e9, '0.37b': 0.37e9, '0.76b': 0.76e9, '1.4b': 1.4e9, '7b': 7e9}
    assert set(ARCHS) == set(expected)
    for name, count in expected.items():
        with torch.device('meta'):
            model = TransfusionTransformer(arch=name, vocab_size=32000 + 6, patch_dim=32)
        n = sum(p.numel() for p in model.parameters())
        assert abs(n / count - 1) < 0.1, (name, n)
        fsdp = '-fsdp' if name == '7b' else ''
        name_ = f'transfusion-{name}-p2_64xb112-bf16{fsdp}-250ki_captions-256.py'
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'transfusion', name_))
        assert cfg.model.generator.arch == name and cfg.model.lambda_ddpm == 5.0
        assert cfg.model.noise_limit == 500 and cfg.model.caption_first_prob == 0.8


def test_unet_7b_adds_the_papers_unet_size():
    """The U-Net patchify adds 0.27B parameters to 7B (the paper's Table 7: 3.8%)."""
    from mmmim.models.generators.transfusion import TransfusionTransformer
    c = Config.fromfile(osp.join(REPO, 'configs', 'transfusion',
                                 'transfusion-7b-unet-p2_64xb112-bf16-fsdp-250ki_captions-256.py'))
    assert c.runner_type == 'FlexibleRunner' and c.model.patch_size == 2
    gen = {k: v for k, v in c.model.generator.items() if k != 'type'}
    with torch.device('meta'):
        model = TransfusionTransformer(**gen, vocab_size=32000 + 6, patch_dim=32)
    extra = sum(p.numel() for p in model.patch_embed.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert abs(extra / 0.27e9 - 1) < 0.1 and abs(extra / total - 0.038) < 0.005, extra


def test_7b_recipe_is_sharded_one_unit_per_block():
    """7B does not fit one GPU with AdamW: FlexibleRunner + FSDP, one unit per Llama block
    (torch FSDP refuses CPU devices, so the config and the wrap policy are what is checked)."""
    from mmengine.registry import FUNCTIONS

    import mmmim.engine  # noqa: F401  (registers the policy)
    from mmmim.models.generators.transfusion import TransfusionTransformer
    c = Config.fromfile(osp.join(REPO, 'configs', 'transfusion',
                                 'transfusion-7b-p2_64xb112-bf16-fsdp-250ki_captions-256.py'))
    assert c.runner_type == 'FlexibleRunner' and c.strategy.type == 'FSDPStrategy'
    wrapper = c.strategy.model_wrapper
    assert wrapper.use_orig_params and wrapper.mixed_precision.param_dtype == 'bfloat16'
    assert c.optim_wrapper.type == 'ShardedGradClipOptimWrapper'
    assert c.optim_wrapper.clip_grad.max_norm == 1.0
    assert c.optim_wrapper.optimizer.lr == 3e-4
    assert c.model.generator.with_cp
    policy = FUNCTIONS.get(wrapper.auto_wrap_policy)
    gen = TransfusionTransformer(arch=dict(embed_dim=32, depth=3, num_heads=4), vocab_size=40)
    assert [m for m in gen.modules() if policy(m, False, 0)] == list(gen.blocks)
    assert policy(gen, True, 0)


def test_schedule_is_the_cosine_formula():
    """diffusers' ``squaredcos_cap_v2`` is Nichol & Dhariwal's cosine schedule (s = 0.008, betas
    capped at 0.999): abar at step t is f((t + 1) / T) / f(0), f(u) = cos((u + s) / (1 + s) pi/2)^2.
    It stays within 0.006 of the paper's sqrt(abar_t) ~ cos(t / T pi/2)."""
    from diffusers import DDPMScheduler
    T, s = 1000, 0.008
    sched = DDPMScheduler(num_train_timesteps=T, beta_schedule='squaredcos_cap_v2')

    def f(u):
        return math.cos((u + s) / (1 + s) * math.pi / 2)**2

    abar, prod = [], 1.0
    for t in range(T):
        prod *= 1 - min(1 - f((t + 1) / T) / f(t / T), 0.999)
        abar.append(prod)
    abar = torch.tensor(abar, dtype=torch.float64)
    torch.testing.assert_close(sched.alphas_cumprod.double(), abar, atol=1e-6, rtol=1e-5)
    paper = torch.cos(torch.arange(T, dtype=torch.float64) / T * math.pi / 2)
    gap = (abar.sqrt() - paper).abs()
    assert gap.max() < 0.006
    # add_noise is sqrt(abar) x0 + sqrt(1 - abar) eps
    x0, eps, t = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 499, 999])
    ref = abar[t, None].sqrt() * x0 + (1 - abar[t, None]).sqrt() * eps
    torch.testing.assert_close(sched.add_noise(x0, eps, t).double(), ref, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope='module')
def model(demo_bpe_tokenizer):
    from mmmim.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmmim'):
        m = MODELS.build(dict(type='Transfusion', tokenizer=demo_bpe_tokenizer, generator=TINY,
                              patch_size=4, lambda_ddpm=5.0, diffusion=dict(clip_sample=True),
                              sampling=dict(num_inference_steps=4, guidance_scale=2.0,
                                            max_new_tokens=6)))
    return m.eval()


def test_loss_equals_written_out_reference(model):
    """The batched, padded loss equals the paper's formulation computed one sample at a time:
    LM cross-entropy over text targets only, epsilon MSE over each image's patches, lambda mix,
    x_t from the cosine formula."""
    torch.manual_seed(1)
    texts = ['a red ring in the upper left', 'a blue disc on a black to gray gradient, lower right',
             'a yellow checkered square in the upper right']
    x0 = torch.rand(3, 16, 48) * 2 - 1  # 16x16 pixels, 4x4 patches
    caption_first = torch.tensor([True, False, True])
    drop = torch.tensor([False, False, True])
    timesteps = torch.tensor([900, 400, 10])
    noise = torch.randn_like(x0)
    out = model.loss_of(texts, x0, caption_first, drop, timesteps, noise)

    s, gen = model.special_ids, model.generator
    abar = torch.cumprod(1 - model.scheduler.betas.double(), 0)
    total_ce, num_targets, mses = 0.0, 0, []
    for i, text in enumerate(texts):
        cap = [] if drop[i] else model.tokenizer(text, add_special_tokens=False)['input_ids']
        if caption_first[i]:
            before, after = [s['bos']] + cap + [s['boi']], [s['eoi'], s['eos']]
        else:
            before, after = [s['bos'], s['boi']], [s['eoi']] + cap + [s['eos']]
        a = abar[timesteps[i]]
        xt = (a.sqrt() * x0[i] + (1 - a).sqrt() * noise[i]).float()
        seq = torch.tensor(before + [s['image']] * 16 + after)
        image_ids = torch.full_like(seq, -1)
        image_ids[len(before):len(before) + 16] = 0
        logits, eps = gen(seq[None], image_ids[None], xt[None], timesteps[i:i + 1])
        logp = F.log_softmax(logits[0].double(), -1)
        for j in range(len(seq) - 1):  # text input predicting a text token
            if image_ids[j] < 0 and image_ids[j + 1] < 0:
                total_ce -= logp[j, seq[j + 1]]
                num_targets += 1
        mses.append(((eps[0].double() - noise[i].double())**2).mean())
    ref_lm = total_ce / num_targets
    ref_ddpm = torch.stack(mses).mean()
    torch.testing.assert_close(out['loss_lm'].double(), ref_lm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out['ddpm_mse'].double(), ref_ddpm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out['loss_ddpm'].double(), 5.0 * ref_ddpm, atol=1e-5, rtol=1e-5)


def test_training_draws_follow_the_paper(model, monkeypatch):
    """Captioning order noises to t <= 500 only; caption dropout only in generation order."""
    seen = []
    monkeypatch.setattr(model, 'loss_of', lambda *a: seen.append(a) or {})
    images = torch.rand(64, 3, 16, 16) * 2 - 1
    samples = [dict(text='a red ring')] * 64
    for _ in range(20):
        model.loss(images, samples)
    first = torch.cat([a[2] for a in seen])
    drop = torch.cat([a[3] for a in seen])
    t = torch.cat([a[4] for a in seen])
    assert 0.75 < first.float().mean() < 0.85  # caption first 80% of the time
    assert t[~first].max() <= 500 and t[first].max() > 900 and t.min() >= 0
    assert not drop[~first].any() and 0.1 < drop[first].float().mean() < 0.3


def test_patchify_is_raster_order():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float).view(2, 3, 4, 4)
    p = patchify(x, 2)  # [2, 4, 12]
    assert p.shape == (2, 4, 12)
    torch.testing.assert_close(p[0, 1].view(2, 2, 3).permute(2, 0, 1), x[0, :, 0:2, 2:4])
    torch.testing.assert_close(unpatchify(p, 2, 3), x)


def _force(model, script):
    """Make the ``k``-th call of the LM head put row ``r``'s logits on ``script[r][k]``
    (``<eos>`` past its end)."""
    calls = {'n': 0}

    def hook(module, args, out):
        step = calls['n']
        calls['n'] += 1
        bias = torch.zeros_like(out)
        for r, toks in enumerate(script[:out.shape[0]]):
            bias[r, toks[step] if step < len(toks) else model.special_ids['eos']] = 1e4
        return out + bias
    return model.generator.lm_head.register_forward_hook(hook)


def test_kv_cached_decoding_equals_uncached(model):
    gen, s = model.generator, model.special_ids
    prompt = model._prompts(['a red ring', 'a blue disc in the lower left'], [], 'cpu')
    outs = []
    for use_cache in (True, False):
        g = torch.Generator().manual_seed(0)
        outs.append(gen.generate(prompt['input_ids'], s, 16, model.ddim(3), valid=prompt['valid'],
                                 max_new_tokens=10, max_images=0, temperature=1.0,
                                 use_cache=use_cache, generator=g))
    assert torch.equal(outs[0][0], outs[1][0]) and outs[0][0].shape == (2, 10)
    # hidden states: a sequence fed in pieces through the cache = the whole sequence at once
    from mmmim.models.generators.transfusion import Context
    x = torch.randn(2, 9, 32)
    ids = torch.tensor([[-1, -1, 0, 0, 0, -1, -1, -1, -1]] * 2)
    valid = torch.ones(2, 9, dtype=torch.bool)
    whole = Context(gen, 2, 'cpu', use_cache=False).extend(x, ids, valid)
    ctx = Context(gen, 2, 'cpu')
    parts = [ctx.extend(x[:, a:b], ids[:, a:b], valid[:, a:b]) for a, b in ((0, 2), (2, 5), (5, 9))]
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-5, rtol=1e-5)


def test_image_in_place_sampling(model):
    """Row 0 writes text, BOI, an image (denoised in place), EOI, text; row 1 only text. Each
    row gets what it gets alone (the other row's image slots are masked), with and without
    the cache; shapes are right."""
    gen, s = model.generator, model.special_ids
    t0, t1 = model.encode_text(['red ring'])[0][:2]
    # LM-head calls: prompt, after each fed token, after EOI (row 0's next token comes from
    # there; row 1 keeps the logits of the call before, so its 4th entry is never used)
    script = [[t0, s['boi'], t0, t1], [t0, t1, t0, t0, t1]]
    prompt = model._prompts(['a', 'a disc'], [], 'cpu')
    results = []
    for use_cache in (True, False):
        handle = _force(model, script)
        try:
            g = torch.Generator().manual_seed(0)
            results.append(gen.generate(prompt['input_ids'], s, 16, model.ddim(3),
                                        valid=prompt['valid'], max_new_tokens=5,
                                        guidance_scale=2.0, temperature=0, use_cache=use_cache,
                                        generator=g))
        finally:
            handle.remove()
    (tokens, images), (tokens_nc, images_nc) = results
    assert tokens.shape == (2, 6)  # 5 sampled + the appended EOI
    assert tokens[0].tolist() == [t0, s['boi'], s['eoi'], t1, s['eos'], s['pad']]
    assert tokens[1].tolist() == [t0, t1, s['pad'], t0, t1, s['eos']]
    assert len(images[0]) == 1 and images[0][0].shape == (16, 48) and images[1] == []
    assert torch.isfinite(images[0][0]).all() and images[0][0].abs().max() <= 1  # clipped DDIM
    assert torch.equal(tokens, tokens_nc)
    torch.testing.assert_close(images[0][0], images_nc[0][0], atol=1e-4, rtol=1e-4)
    # row 0 alone, from the same noise: the same image
    handle = _force(model, script[:1])
    try:
        g = torch.Generator().manual_seed(0)
        alone = gen.generate(model._prompts(['a'], [], 'cpu')['input_ids'], s, 16, model.ddim(3),
                             max_new_tokens=5, guidance_scale=2.0, temperature=0, generator=g)
    finally:
        handle.remove()
    torch.testing.assert_close(alone[1][0][0], images[0][0], atol=1e-4, rtol=1e-4)
    # the algorithm's entry points
    imgs = model.text_to_image(['a red ring', 'a green disc'], num_patches=16,
                               generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (2, 3, 16, 16) and 0 <= imgs.min() and imgs.max() <= 1
    caps = model.image_to_text(torch.rand(2, 3, 16, 16) * 2 - 1,
                               generator=torch.Generator().manual_seed(0))
    assert len(caps) == 2 and all(isinstance(c, str) for c in caps)


def test_document_mask_equals_brute_force():
    """Packed rows: a position attends within its own document only (causal, bidirectional
    within each image, padding masked), for the SDPA mask and the FlexAttention block mask."""
    # two rows of documents: (doc, kind, size) runs, then padding
    rows = [[(0, 'text', 3), (0, 'image', 4), (0, 'text', 2), (1, 'text', 2), (1, 'image', 3)],
            [(2, 'text', 2), (2, 'image', 5), (2, 'text', 1), (3, 'text', 4), (3, 'image', 2),
             (3, 'text', 1), (4, 'text', 3)]]
    L = 20
    image_ids, doc_ids, valid = [], [], []
    for row in rows:
        img, doc, n_img = [], [], 0
        for d, kind, size in row:
            img += [n_img if kind == 'image' else -1] * size
            n_img += kind == 'image'
            doc += [d] * size
        pad = L - len(img)
        image_ids.append(img + [-1] * pad)
        doc_ids.append(doc + [-1] * pad)
        valid.append([True] * len(doc) + [False] * pad)
    image_ids, doc_ids, valid = map(torch.tensor, (image_ids, doc_ids, valid))
    ref = torch.zeros(2, L, L, dtype=torch.bool)
    for b in range(2):
        for q in range(L):
            for k in range(L):
                same_doc = doc_ids[b, q] == doc_ids[b, k]
                same_img = image_ids[b, q] >= 0 and image_ids[b, q] == image_ids[b, k]
                ref[b, q, k] = q == k or (bool(valid[b, k]) and same_doc
                                          and (k < q or same_img))
    mask = mixed_modal_mask(image_ids, valid, doc_ids=doc_ids)
    assert torch.equal(mask[:, 0], ref)
    from mmmim.models.layers.llama import LlamaAttention
    torch.manual_seed(0)
    attn = LlamaAttention(32, 4)
    x = torch.randn(2, L, 32)
    pos = torch.arange(L).repeat(2, 1)
    with torch.no_grad():
        flex = attn(x, pos, mixed_modal_block_mask(image_ids, valid, doc_ids))
        dense = attn(x, pos, mask)
    torch.testing.assert_close(flex, dense, atol=1e-5, rtol=1e-5)


def test_packed_loss_equals_one_pair_a_row(model):
    """Packing pairs into rows (attention and RoPE positions per document) changes nothing:
    the loss equals the loss with one pair a row; a pair that cannot fit is refused."""
    from mmmim.models.algorithms.transfusion import pack_first_fit
    assert pack_first_fit([5, 4, 3, 2, 6], 9) == [[0, 1], [2, 3], [4]]
    torch.manual_seed(2)
    texts = ['a red ring in the upper left', 'a blue disc', 'a yellow checkered square on a '
             'white to gray gradient, lower right', 'a green ring', 'a red disc, upper right']
    x0 = torch.rand(5, 16, 48) * 2 - 1
    caption_first = torch.tensor([True, False, True, True, False])
    drop = torch.tensor([False, False, False, True, False])
    timesteps = torch.tensor([900, 400, 10, 999, 250])
    noise = torch.randn_like(x0)
    ref = model.loss_of(texts, x0, caption_first, drop, timesteps, noise)
    try:
        model.max_seq_len = 64
        seq = model.build_sequences([model.encode_text([t])[0] for t in texts], 16,
                                    caption_first)
        assert seq['input_ids'].shape[0] < 5 and seq['input_ids'].shape[1] == 64
        assert sorted(seq['order'].tolist()) == list(range(5))
        packed = model.loss_of(texts, x0, caption_first, drop, timesteps, noise)
        model.max_seq_len = 20
        with pytest.raises(ValueError, match='max_seq_len=20'):
            model.loss_of(texts, x0, caption_first, drop, timesteps, noise)
    finally:
        model.max_seq_len = None
    for k in ('loss_lm', 'ddpm_mse', 'text_acc'):
        torch.testing.assert_close(packed[k], ref[k], atol=1e-5, rtol=1e-5)


def test_unet_patch_embed_is_diffusers_unet():
    """With the transformer taken out (identity projections), the U-Net patchify's down and up
    blocks are diffusers' ``UNet2DModel`` of the same blocks without a middle block."""
    from diffusers import UNet2DModel

    from mmmim.models.generators.transfusion import UNetPatchEmbed
    torch.manual_seed(0)
    embed = UNetPatchEmbed(patch_dim=4 * 4 * 4, embed_dim=24, in_channels=4,
                           block_out_channels=(8, 16, 24), layers_per_block=1, norm_num_groups=4)
    assert embed.p == 4
    ref = UNet2DModel(in_channels=4, out_channels=4, down_block_types=('DownBlock2D', ) * 3,
                      up_block_types=('UpBlock2D', ) * 3, mid_block_type=None,
                      block_out_channels=(8, 16, 24), layers_per_block=1, norm_num_groups=4)
    ref.load_state_dict(embed.unet.state_dict())
    with torch.no_grad():
        embed.proj_in.weight.copy_(torch.eye(24))
        embed.proj_out.weight.copy_(torch.eye(24))
        embed.proj_in.bias.zero_()
        embed.proj_out.bias.zero_()
        latents = torch.randn(2, 4, 16, 16)
        t = torch.tensor([10, 700])
        tokens, state = embed.encode(patchify(latents, 4), t)
        assert tokens.shape == (2, 16, 24)
        out = unpatchify(embed.decode(tokens, state), 4, 4)
        expected = ref(latents, t).sample
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='patch_size to 4'):
        UNetPatchEmbed(patch_dim=16, embed_dim=24, in_channels=4, block_out_channels=(8, 16, 24))


def test_unet_transfusion_trains_and_samples(demo_bpe_tokenizer):
    """A Transfusion with the U-Net patchify: loss terms finite with gradients into the U-Net,
    text -> image returns images of the input size."""
    from mmmim.registry import MODELS
    torch.manual_seed(0)
    gen = dict(TINY, patch_embed=dict(type='UNetPatchEmbed', in_channels=3,
                                      block_out_channels=(8, 16), layers_per_block=1,
                                      norm_num_groups=4))
    with DefaultScope.overwrite_default_scope('mmmim'):
        m = MODELS.build(dict(type='Transfusion', tokenizer=demo_bpe_tokenizer, generator=gen,
                              patch_size=2, sampling=dict(num_inference_steps=2,
                                                          guidance_scale=2.0)))
    out = m.loss(torch.rand(2, 3, 8, 8) * 2 - 1, [dict(text='a red ring')] * 2)
    (out['loss_lm'] + out['loss_ddpm']).backward()
    assert all(torch.isfinite(v) for v in out.values())
    assert m.generator.patch_embed.unet.conv_in.weight.grad.abs().sum() > 0
    imgs = m.eval().text_to_image(['a red ring'], num_patches=16,
                                  generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (1, 3, 8, 8)
