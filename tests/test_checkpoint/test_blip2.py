"""BLIP-2 checkpoint layouts: LAVIS files (keys written out here as LAVIS names them), HF
folders, strict and loud loading, the position table resized as LAVIS does."""
import pytest
import torch
import torch.nn.functional as F

from mmmim.checkpoint.blip2 import load_blip2, load_eva_vit, to_lavis
from mmmim.models import BLIP2
from mmmim.models.backbones.vit import ViT
from ..test_models.test_blip2 import (IMG, OPT, QF, VIS, bert_vocab, llm_tokenizer, ours,  # noqa: F401
                                      qformer_cfg, randomize, vit_cfg)

# The LAVIS names of one Q-Former layer with cross-attention (layer 0 of cross_attention_freq=2)
# and one without, after Qformer.bert.encoder.layer.N. (lavis/models/blip2_models/Qformer.py).
_SELF = [f'attention.self.{p}.{w}' for p in ('query', 'key', 'value') for w in ('weight', 'bias')]
_OUT = [f'attention.output.{p}' for p in ('dense.weight', 'dense.bias', 'LayerNorm.weight',
                                          'LayerNorm.bias')]
_FFN = ['intermediate{q}.dense.weight', 'intermediate{q}.dense.bias', 'output{q}.dense.weight',
        'output{q}.dense.bias', 'output{q}.LayerNorm.weight', 'output{q}.LayerNorm.bias']


def lavis_qformer_keys(num_layers, text_side, cls_head):
    keys = ['Qformer.bert.embeddings.LayerNorm.weight', 'Qformer.bert.embeddings.LayerNorm.bias']
    if text_side:
        keys += ['Qformer.bert.embeddings.word_embeddings.weight',
                 'Qformer.bert.embeddings.position_embeddings.weight']
    for i in range(num_layers):
        layer = _SELF + _OUT
        if i % 2 == 0:
            layer += [k.replace('attention.', 'crossattention.', 1) for k in _SELF + _OUT]
        layer += [k.format(q='_query') for k in _FFN]
        if text_side:
            layer += [k.format(q='') for k in _FFN]
        keys += [f'Qformer.bert.encoder.layer.{i}.{k}' for k in layer]
    if cls_head:
        keys += ['Qformer.cls.predictions.bias', 'Qformer.cls.predictions.transform.dense.weight',
                 'Qformer.cls.predictions.transform.dense.bias',
                 'Qformer.cls.predictions.transform.LayerNorm.weight',
                 'Qformer.cls.predictions.transform.LayerNorm.bias',
                 'Qformer.cls.predictions.decoder.weight', 'Qformer.cls.predictions.decoder.bias']
    return keys


def lavis_vit_keys(depth):
    keys = ['visual_encoder.cls_token', 'visual_encoder.pos_embed',
            'visual_encoder.patch_embed.proj.weight', 'visual_encoder.patch_embed.proj.bias',
            'ln_vision.weight', 'ln_vision.bias']
    for i in range(depth):
        keys += [f'visual_encoder.blocks.{i}.{k}' for k in (
            'norm1.weight', 'norm1.bias', 'attn.q_bias', 'attn.v_bias', 'attn.qkv.weight',
            'attn.proj.weight', 'attn.proj.bias', 'norm2.weight', 'norm2.bias', 'mlp.fc1.weight',
            'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias')]
    return keys


@pytest.fixture(scope='module')
def stage1_model(bert_vocab):  # noqa: F811
    torch.manual_seed(0)
    return BLIP2(visual_encoder=vit_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab,
                 embed_dim=16, vit_precision='fp32')


def test_lavis_stage1_layout_round_trip(stage1_model, bert_vocab, tmp_path):  # noqa: F811
    lavis = to_lavis(stage1_model.state_dict())
    expected = lavis_vit_keys(2) + lavis_qformer_keys(2, True, True) + [
        'query_tokens', 'vision_proj.weight', 'vision_proj.bias', 'text_proj.weight',
        'text_proj.bias', 'itm_head.weight', 'itm_head.bias', 'temp']
    assert sorted(lavis) == sorted(expected)
    lavis['Qformer.bert.embeddings.position_ids'] = torch.arange(64)[None]  # LAVIS's buffer
    path = tmp_path / 'blip2_pretrained.pth'
    torch.save({'model': lavis}, path)
    fresh = BLIP2(visual_encoder=vit_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab,
                  embed_dim=16, vit_precision='fp32')
    report = load_blip2(fresh, str(path))
    assert report['format'] == 'lavis' and report['dropped'] == ['Qformer.bert.embeddings.position_ids']
    for k, v in stage1_model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_stage1_file_into_stage2_and_instructblip(stage1_model, llm_tokenizer, bert_vocab,  # noqa: F811
                                                  tmp_path):
    path = tmp_path / 'stage1.pth'
    torch.save({'model': to_lavis(stage1_model.state_dict())}, path)
    m = ours('opt', llm_tokenizer)
    proj = m.llm_proj.weight.clone()
    report = load_blip2(m, str(path))
    assert any('llm_proj stays' in n for n in report['notes'])
    assert 'Qformer.cls.predictions.bias' not in report['dropped']  # reported in mmmim names
    assert 'qformer.cls.predictions.bias' in report['dropped'] and 'temp' in report['dropped']
    assert torch.equal(m.llm_proj.weight, proj)
    assert torch.equal(m.qformer.query_tokens, stage1_model.qformer.query_tokens)
    assert torch.equal(m.qformer.bert.encoder.layer[1].output_query.dense.weight,
                       stage1_model.qformer.bert.encoder.layer[1].output_query.dense.weight)
    # InstructBLIP keeps the text side
    from mmmim.models import InstructBLIP
    ib = ours('opt', llm_tokenizer, cls=InstructBLIP, tokenizer=bert_vocab)
    load_blip2(ib, str(path))
    assert torch.equal(ib.qformer.embeddings.word_embeddings.weight,
                       stage1_model.qformer.embeddings.word_embeddings.weight)


def test_lavis_stage2_opt_layout(llm_tokenizer, tmp_path):  # noqa: F811
    m = ours('opt', llm_tokenizer)
    lavis = to_lavis(m.state_dict(), proj='opt_proj')
    assert sorted(lavis) == sorted(lavis_vit_keys(2) + lavis_qformer_keys(2, False, False) +
                                   ['query_tokens', 'opt_proj.weight', 'opt_proj.bias'])
    del lavis['Qformer.bert.encoder.layer.1.output_query.dense.bias']
    lavis['Qformer.bert.encoder.layer.0.attention.self.query.weight'] = torch.zeros(3, 3)
    path = tmp_path / 'bad.pth'
    torch.save({'model': lavis}, path)
    with pytest.raises(KeyError, match=r'layer\.1\.output_query\.dense\.bias.*wrong shapes.*'
                       r'layer\.0\.attention\.attention\.query\.weight'):
        load_blip2(m, str(path))
    torch.save({'model': {'Qformer.bert.embeddings.LayerNorm.bias': torch.zeros(1),
                          'surprise': torch.zeros(1)}}, path)
    with pytest.raises(KeyError, match="'surprise' has no place"):
        load_blip2(m, str(path))
    torch.save({'model': {'surprise': torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match='not a BLIP-2'):
        load_blip2(m, str(path))


def test_hf_folder_loads(llm_tokenizer, tmp_path):  # noqa: F811
    from transformers import Blip2Config, Blip2ForConditionalGeneration
    hf = randomize(Blip2ForConditionalGeneration(Blip2Config(
        vision_config=VIS, qformer_config=QF, text_config=dict(model_type='opt', **OPT),
        num_query_tokens=4)))
    hf.save_pretrained(tmp_path)
    m = ours('opt', llm_tokenizer)
    report = load_blip2(m, str(tmp_path / 'model.safetensors'))
    assert report['format'] == 'hf' and not report['notes']
    assert torch.equal(m.llm.model.lm_head.weight, hf.language_model.lm_head.weight)


def test_position_table_resized_as_lavis(stage1_model, bert_vocab, tmp_path):  # noqa: F811
    """A 4x4-grid file into the 2x2-grid model: bicubic, align_corners=False, class token kept
    (LAVIS's interpolate_pos_embed)."""
    sd = to_lavis(stage1_model.state_dict())
    table = torch.randn(1, 1 + 16, 32)
    sd['visual_encoder.pos_embed'] = table
    path = tmp_path / 'big.pth'
    torch.save({'model': sd}, path)
    fresh = BLIP2(visual_encoder=vit_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab,
                  embed_dim=16, vit_precision='fp32')
    load_blip2(fresh, str(path))
    grid = table[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(2, 2), mode='bicubic', align_corners=False)
    expected = torch.cat([table[:, :1], grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)
    assert torch.allclose(fresh.visual_encoder.pos_embed, expected, atol=1e-6)


def test_eva_vit_file_drops_the_last_block(tmp_path):
    src = ViT(arch=dict(embed_dim=32, depth=3, num_heads=4, mlp_ratio=2.0), img_size=56,
              patch_size=14, qkv_bias=False, qv_bias=True, final_norm=False, out_type='raw')
    path = tmp_path / 'eva_vit_g.pth'
    torch.save(src.state_dict(), path)
    dst = ViT(arch=dict(embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0), img_size=IMG,
        patch_size=14, qkv_bias=False, qv_bias=True, final_norm=False, out_type='raw')
    report = load_eva_vit(dst, str(path))
    assert report['dropped_blocks'] == [2]
    assert torch.equal(dst.blocks[1].mlp.fc2.weight, src.blocks[1].mlp.fc2.weight)
    assert dst.pos_embed.shape == (1, 5, 32)
    torch.save({k: v for k, v in src.state_dict().items() if 'q_bias' not in k}, path)
    with pytest.raises(KeyError, match='q_bias'):
        load_eva_vit(dst, str(path))


def _converter():
    import importlib.util
    from ..conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'convert', f'{REPO}/tools/model_converters/convert.py')
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    return convert


def _randomized(model):
    """Random weights everywhere (norm weights around 1) so no mis-mapped tensor hides."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 +
                    (1.0 if 'norm' in name.lower() and name.endswith('weight') else 0.0))
    return model.eval()


def _config_file(tmp_path, kind, llm_folder, **extra):
    from mmengine.config import Config
    path = str(tmp_path / f'{kind}.py')
    Config(dict(model=dict(type=kind, visual_encoder=vit_cfg(), qformer=qformer_cfg(),
                           llm=dict(path=llm_folder), vit_precision='fp32', ln_vision_eps=1e-6,
                           **extra))).dump(path)
    return path


def test_converter_lavis_and_hf_to_mmmim_and_hf_export(llm_tokenizer, tmp_path):  # noqa: F811
    """tools/model_converters/convert.py: a LAVIS stage-2 file (no LLM, as LAVIS saves it) ->
    mmmim file and -> HF folder (LLM from the config's folder) that
    Blip2ForConditionalGeneration.from_pretrained loads with the same LM logits; the HF folder
    -> mmmim gives back every weight."""
    from transformers import Blip2ForConditionalGeneration
    convert = _converter()
    m = _randomized(ours('opt', llm_tokenizer))
    llm_folder = str(tmp_path / 'opt')
    m.llm.model.save_pretrained(llm_folder)
    config = _config_file(tmp_path, 'BLIP2', llm_folder)
    lavis = str(tmp_path / 'blip2_pretrained_opt.pth')
    torch.save({'model': to_lavis(m.state_dict(), proj='opt_proj')}, lavis)

    mm = str(tmp_path / 'mmmim.pth')
    convert.convert(lavis, mm)
    sd = torch.load(mm, weights_only=True)['state_dict']
    own = {k: v for k, v in m.state_dict().items() if not k.startswith('llm.')}
    assert set(sd) == set(own) and all(torch.equal(sd[k], v) for k, v in own.items())
    with pytest.raises(SystemExit, match='exists'):
        convert.convert(lavis, mm)

    hf_dir = str(tmp_path / 'hf')
    convert.convert(lavis, hf_dir, dst_format='hf-blip2', config=config)
    hf, info = Blip2ForConditionalGeneration.from_pretrained(hf_dir, output_loading_info=True)
    assert not info['missing_keys'] and not info['unexpected_keys'], info
    hf.eval()
    x = torch.randn(2, 3, IMG, IMG)
    ids, mask = torch.tensor([[1, 3, 4, 5], [1, 6, 7, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        ref = hf(pixel_values=x, input_ids=ids, attention_mask=mask)
        q = m(x)
        logits = m.llm(m.llm_proj(q), ids, mask).logits
    assert (q - ref.qformer_outputs.last_hidden_state).abs().max() <= 1e-5
    assert (logits - ref.logits).abs().max() <= 1e-5

    back = str(tmp_path / 'from_hf.pth')
    convert.convert(hf_dir, back)
    sd = torch.load(back, weights_only=True)['state_dict']
    # OPT's lm_head is tied to its embeddings: saved once (by the LLM folder too), re-tied on load
    assert set(m.state_dict()) - set(sd) == {'llm.model.lm_head.weight'}
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in sd.items())
    report = load_blip2(ours('opt', llm_tokenizer), back)
    assert report['format'] == 'mmmim'


def test_converter_instructblip_hf_export(llm_tokenizer, bert_vocab, tmp_path):  # noqa: F811
    from transformers import InstructBlipForConditionalGeneration
    from mmmim.models import InstructBLIP
    convert = _converter()
    m = _randomized(ours('opt', llm_tokenizer, cls=InstructBLIP, tokenizer=bert_vocab))
    llm_folder = str(tmp_path / 'opt')
    m.llm.model.save_pretrained(llm_folder)
    config = _config_file(tmp_path, 'InstructBLIP', llm_folder)
    src = str(tmp_path / 'instructblip.pth')
    torch.save({'state_dict': m.state_dict()}, src)  # mmmim's own file (LLM included)
    hf_dir = str(tmp_path / 'hf')
    convert.convert(src, hf_dir, dst_format='hf-instructblip', config=config)
    hf, info = InstructBlipForConditionalGeneration.from_pretrained(hf_dir, output_loading_info=True)
    assert not info['missing_keys'] and not info['unexpected_keys'], info
    hf.eval()
    x = torch.randn(2, 3, IMG, IMG)
    instructions = ['what shape is in the image ?', 'what is red ?']
    qtext = m.tokenize(instructions, 128, padding='longest', truncation_side='left')
    ids, mask = torch.tensor([[1, 8, 4, 5], [1, 8, 6, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        ref = hf(pixel_values=x, qformer_input_ids=qtext['input_ids'],
                 qformer_attention_mask=qtext['attention_mask'], input_ids=ids, attention_mask=mask)
        logits = m.llm(m.llm_proj(m.query_outputs(m.image_embeds(x), instructions)), ids, mask).logits
    assert (logits - ref.logits).abs().max() <= 1e-5


def test_converter_refuses_stage1_hf_export(stage1_model, llm_tokenizer, tmp_path):  # noqa: F811
    convert = _converter()
    src = str(tmp_path / 'stage1.pth')
    torch.save({'state_dict': stage1_model.state_dict()}, src)
    folder = str(tmp_path / 'opt')
    ours('opt', llm_tokenizer).llm.model.save_pretrained(folder)
    config = _config_file(tmp_path, 'BLIP2', folder)
    with pytest.raises(KeyError, match='stage-2 / InstructBLIP model'):
        convert.convert(src, str(tmp_path / 'hf'), dst_format='hf-blip2', config=config)


# ---------------------------------------------------------------- CLIP ViT-L tower (LAVIS clip_vit.py)
def clip_tower_cfg(depth=2, C=32):
    """A tiny CLIP-style tower: the options of the ``clip-l`` arch's configs."""
    return dict(type='ViT', arch=dict(embed_dim=C, depth=depth, num_heads=4, mlp_ratio=4.0),
                img_size=IMG, patch_size=14, patch_bias=False, pre_norm=True,
                act_layer='quick_gelu', norm_eps=1e-5, final_norm=False, out_type='raw')


def openai_clip_visual(hf_vision):
    """The OpenAI CLIP / LAVIS ``clip_vit.py`` state dict of a HF ``CLIPVisionModel``, written
    out module by module (``nn.MultiheadAttention`` fuses q, k, v into ``in_proj``)."""
    vm = hf_vision.vision_model
    sd = {'conv1.weight': vm.embeddings.patch_embedding.weight,
          'class_embedding': vm.embeddings.class_embedding,
          'positional_embedding': vm.embeddings.position_embedding.weight,
          'ln_pre.weight': vm.pre_layrnorm.weight, 'ln_pre.bias': vm.pre_layrnorm.bias,
          'ln_post.weight': vm.post_layernorm.weight, 'ln_post.bias': vm.post_layernorm.bias,
          'proj': torch.randn(vm.config.hidden_size, 8)}
    for i, layer in enumerate(vm.encoder.layers):
        a, p = layer.self_attn, f'transformer.resblocks.{i}.'
        sd[p + 'attn.in_proj_weight'] = torch.cat([a.q_proj.weight, a.k_proj.weight,
                                                   a.v_proj.weight])
        sd[p + 'attn.in_proj_bias'] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
        for ours_name, mod in (('attn.out_proj', a.out_proj), ('ln_1', layer.layer_norm1),
                               ('mlp.c_fc', layer.mlp.fc1), ('mlp.c_proj', layer.mlp.fc2),
                               ('ln_2', layer.layer_norm2)):
            sd[f'{p}{ours_name}.weight'], sd[f'{p}{ours_name}.bias'] = mod.weight, mod.bias
    return {k: v.detach().clone() for k, v in sd.items()}


def test_clip_vit_l_tower_matches_hf_clip(tmp_path):
    """LAVIS's clip_vit_L.pth layout (3 blocks here) into the 2-block tower: the tokens equal HF
    CLIPVisionModel's hidden state after block 2 (before post_layernorm), QuickGELU, ln_pre."""
    from transformers import CLIPVisionConfig, CLIPVisionModel
    torch.manual_seed(0)
    hf = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=32, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        image_size=IMG, patch_size=14, hidden_act='quick_gelu', layer_norm_eps=1e-5)).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.copy_(torch.randn_like(p) * 0.1 + (1.0 if 'norm' in name and name.endswith('weight')
                                                 else 0.0))
    path = tmp_path / 'clip_vit_L.pth'
    torch.save(openai_clip_visual(hf), path)
    cfg = clip_tower_cfg()
    cfg.pop('type')
    vit = ViT(**cfg).eval()
    report = load_eva_vit(vit, str(path))
    assert report['dropped_blocks'] == [2] and sorted(report['dropped']) == [
        'ln_post.bias', 'ln_post.weight', 'proj']
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        ref = hf(pixel_values=x, output_hidden_states=True).hidden_states[2]  # [B, 1 + h*w, C]
        out = vit(x)[0]
    assert out.shape == ref.shape == (2, 5, 32)
    assert (out - ref).abs().max() <= 1e-5
    # a key of neither layout is named
    bad = openai_clip_visual(hf)
    bad['transformer.resblocks.0.attn.in_proj.weight'] = bad.pop(
        'transformer.resblocks.0.attn.in_proj_weight')
    torch.save(bad, path)
    with pytest.raises(KeyError, match=r"resblocks\.0\.attn\.in_proj\.weight"):
        load_eva_vit(vit, str(path))


def lavis_clip_vit_keys(depth):
    """LAVIS's ``visual_encoder`` keys of a BLIP-2 on CLIP ViT-L (``clip_vit.py`` names)."""
    keys = ['visual_encoder.conv1.weight', 'visual_encoder.class_embedding',
            'visual_encoder.positional_embedding', 'visual_encoder.ln_pre.weight',
            'visual_encoder.ln_pre.bias', 'ln_vision.weight', 'ln_vision.bias']
    for i in range(depth):
        keys += [f'visual_encoder.transformer.resblocks.{i}.{k}' for k in (
            'attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight',
            'attn.out_proj.bias', 'ln_1.weight', 'ln_1.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias',
            'mlp.c_proj.weight', 'mlp.c_proj.bias', 'ln_2.weight', 'ln_2.bias')]
    return keys


def test_lavis_clip_l_stage1_layout_round_trip(bert_vocab, llm_tokenizer, tmp_path):  # noqa: F811
    """A LAVIS blip2_pretrained_vitL.pth-style file (CLIP names under visual_encoder.) loads
    strictly into a BLIP-2 on the CLIP tower; the HF export says why it cannot hold it."""
    torch.manual_seed(0)
    src = BLIP2(visual_encoder=clip_tower_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab,
                embed_dim=16, vit_precision='fp32')
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    lavis = to_lavis(src.state_dict())
    assert sorted(lavis) == sorted(lavis_clip_vit_keys(2) + lavis_qformer_keys(2, True, True) + [
        'query_tokens', 'vision_proj.weight', 'vision_proj.bias', 'text_proj.weight',
        'text_proj.bias', 'itm_head.weight', 'itm_head.bias', 'temp'])
    assert lavis['visual_encoder.class_embedding'].shape == (32, )
    assert lavis['visual_encoder.positional_embedding'].shape == (5, 32)
    path = tmp_path / 'blip2_pretrained_vitL.pth'
    torch.save({'model': lavis}, path)
    fresh = BLIP2(visual_encoder=clip_tower_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab,
                  embed_dim=16, vit_precision='fp32')
    assert load_blip2(fresh, str(path))['format'] == 'lavis'
    for k, v in src.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        assert torch.equal(fresh.eval().image_embeds(x), src.eval().image_embeds(x))
    del lavis['visual_encoder.ln_pre.bias']
    torch.save({'model': lavis}, path)
    with pytest.raises(KeyError, match=r'missing.*visual_encoder\.norm_pre\.bias'):
        load_blip2(fresh, str(path))
    from mmmim.checkpoint.blip2 import to_hf
    m = ours('opt', llm_tokenizer)
    sd = {k: v for k, v in m.state_dict().items() if not k.startswith('visual_encoder.')}
    sd.update({'visual_encoder.' + k: v for k, v in fresh.visual_encoder.state_dict().items()})
    with pytest.raises(KeyError, match='CLIP ViT-L tower has no place'):
        to_hf(sd)
