"""Networks that produce targets stay fixed: frozen, in eval mode, fp32 outside autocast."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement

from mmmim.models import DALLEEncoder

from .test_beit import random_mask, tiny_beit, tiny_beitv2
from .test_cae import tiny_cae
from .test_vqkd import tiny_vqkd


def batch(B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randn(B, 3, 32, 32, generator=g)
    view = torch.rand(B, 3, 32, 32, generator=g) * 2 - 1
    samples = [BaseDataElement(mask=m.view(4, 4)) for m in random_mask(B=B, seed=seed)]
    return [imgs, view], samples


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize('build, target', [(tiny_beit, 'tokenizer'), (tiny_beitv2, 'tokenizer'),
                                           (tiny_cae, 'tokenizer'),
                                           (tiny_vqkd, 'teacher_model')])
def test_target_network_is_unchanged_by_training_steps(build, target):
    torch.manual_seed(0)
    model = build()
    net = getattr(model, target)
    model.train()
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    before = state(net)
    inputs, samples = batch()
    probe = inputs[1] if target == 'tokenizer' else inputs[0]
    ids = net.get_codebook_indices(probe) if target == 'tokenizer' else None
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.5))
    for step in range(2):
        losses = model.loss(inputs[0] if target == 'teacher_model' else inputs, samples)
        loss = sum(v for k, v in losses.items() if k.startswith('loss'))
        wrapper.backward(loss)
        # every trainable parameter got a gradient: DDP needs no find_unused_parameters
        unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not unused, unused
        wrapper.step()
        wrapper.zero_grad()
    after = state(net)
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    if ids is not None:
        assert torch.equal(net.get_codebook_indices(probe), ids)


def test_cae_target_latents_come_from_the_encoder_in_eval_mode():
    torch.manual_seed(0)
    model = tiny_cae()
    model.backbone.blocks[1].drop_path.drop_prob = 0.9  # stochastic depth in training
    model.train()
    imgs = torch.randn(2, 3, 32, 32)
    mask = random_mask()
    first = model.target_latents(imgs, mask)
    assert torch.equal(first, model.target_latents(imgs, mask))
    assert model.backbone.training and model.backbone.blocks[1].drop_path.training
    model.eval()
    with torch.no_grad():
        expected = model.backbone.forward_subset(imgs, mask)[:, 1:]
    assert torch.equal(first, expected)


def test_dalle_tokens_under_bf16_autocast_equal_fp32_tokens():
    torch.manual_seed(0)
    enc = DALLEEncoder(n_hid=16, vocab_size=512)
    x = torch.rand(4, 3, 32, 32) * 0.8 + 0.1
    ref = enc.get_codebook_indices(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = enc(x)
        ids = enc.get_codebook_indices(x)
    assert logits.dtype == torch.float32
    assert torch.equal(ids, ref)


def test_vqkd_tokens_under_bf16_autocast_equal_fp32_tokens():
    torch.manual_seed(0)
    tok = tiny_vqkd(teacher=False, num_tokens=256, kmeans_init=False).eval()
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    ref = tok.get_codebook_indices(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ids = tok.get_codebook_indices(x)
    assert torch.equal(ids, ref)


def test_an_uninitialised_vqkd_codebook_is_refused_as_a_tokenizer():
    tok = tiny_vqkd(teacher=False, kmeans_init=True).eval()
    with pytest.raises(RuntimeError, match='never initialised'):
        tok.get_codebook_indices(torch.zeros(1, 3, 32, 32))
