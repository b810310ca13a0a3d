"""Convert a checkpoint between layouts.

    python tools/model_converters/convert.py SRC DST [--src-format auto]
        [--dst-format mmmim|timm|mmseg] [--force] [--allow-pickle]

SRC is a file or URL in any supported layout (official MAE / BEiT / BEiT v2,
timm, mmpretrain / mmselfsup, mmseg, mmmim), or a Hugging Face model folder
(ViTMAE, BEiT, Data2VecVision: config.json + weights). DST ending in
``.safetensors`` is written as safetensors. Output is written atomically and
never replaces an existing file without --force.

    python tools/model_converters/convert.py SRC DST_FOLDER
        --dst-format hf-vitmae|hf-beit|hf-data2vec-vision [--config CONFIG]
        [--num-heads N] [--decoder-num-heads N]

writes config.json + model.safetensors for transformers' ViTMAEModel (or
ViTMAEForPreTraining with MAE's decoder), BeitModel or Data2VecVisionModel.
Head counts and other settings the weights do not hold come from CONFIG
(the training config) or the options.

BLIP files (official model_base.pth ..., mmpretrain, HF BlipForImageTextRetrieval /
BlipForConditionalGeneration folders, mmmim) convert to mmmim's BLIP keys, to the
official layout (--dst-format blip-official), or to an HF folder
(--dst-format hf-blip-retrieval|hf-blip-caption --config CONFIG: head counts and
token ids from the BLIP training config and its tokenizer).

BLIP-2 / InstructBLIP files (LAVIS blip2_pretrained*.pth / instruct_blip_*.pth, HF
Blip2ForConditionalGeneration / InstructBlipForConditionalGeneration folders, mmmim) convert
to mmmim's BLIP2 keys, or to an HF folder loadable by ``from_pretrained``
(--dst-format hf-blip2|hf-instructblip --config CONFIG: head counts, epsilons and the LLM
folder from the BLIP-2 / InstructBLIP config; LLM weights absent from SRC, as in LAVIS
files, are taken from that folder).
"""
import argparse
import os.path as osp

from mmmim.checkpoint import (FORMATS, read_checkpoint, to_mmmim, to_mmseg, to_timm,
                              write_checkpoint)
from mmmim.checkpoint.convert import Converted
from mmmim.checkpoint.blip import HF_BLIP_FORMATS, blip_to_hf, blip_to_official, to_blip_mmmim
from mmmim.checkpoint.blip2 import HF_BLIP2_FORMATS, blip2_to_hf_export, blip2_to_mmmim
from mmmim.checkpoint.hf import (HF_FORMATS, from_hf, hf_model_cfg, hf_options, read_hf_folder,
                                 to_hf, write_hf_folder)


def read_source(src, src_format='auto', allow_pickle=False):
    """SRC (a checkpoint file / URL, or a Hugging Face model folder) in mmmim's key space."""
    if not osp.isdir(src):
        return to_mmmim(read_checkpoint(src, allow_pickle=allow_pickle), src_format)
    config, sd = read_hf_folder(src)
    if config.get('model_type') == 'blip':
        return to_blip_mmmim(sd, 'hf')
    if config.get('model_type') in ('blip-2', 'instructblip'):
        out, fmt, dropped = blip2_to_mmmim(sd, 'hf')
        return Converted(out, f'blip2-{fmt}', dropped)
    converted = from_hf(config, sd)
    print(f'{src}: mmmim model parts that hold these weights: '
          f'{hf_model_cfg(config, converted.state_dict)}')
    return converted


def blip_export_options(config):
    """Head counts, norm eps and token ids of a BLIP training config (for the HF config)."""
    from mmengine.config import Config
    from mmmim.models.backbones.vit import ARCHS
    from mmmim.models.multimodal.med import MED_ARCHS
    from mmmim.models.tokenizers.text import build_bert_tokenizer
    if not config:
        raise SystemExit('hf-blip-* needs --config (the BLIP training config): head counts and '
                         'token ids are not in the weights')
    model = Config.fromfile(config).model
    vit = model.vision_encoder.get('arch', 'base')
    med = model.get('med', {}).get('arch', 'base')
    tok = build_bert_tokenizer(model.tokenizer)
    return dict(vision_heads=(ARCHS[vit] if isinstance(vit, str) else vit)['num_heads'],
                text_heads=(MED_ARCHS[med] if isinstance(med, str) else med)['num_attention_heads'],
                vision_eps=model.vision_encoder.get('norm_eps', 1e-6),
                bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id,
                pad_token_id=tok.pad_token_id)


def blip2_export_options(config, sd):
    """Head counts, epsilons and the LLM config of a BLIP-2 / InstructBLIP config; the LLM
    weights of its folder added to ``sd`` (``llm.model.*``) where SRC has none."""
    from mmengine.config import Config
    from mmmim.models.backbones.vit import ARCHS
    from mmmim.models.multimodal.llm import ARCHS as LLM_ARCHS
    from mmmim.models.multimodal.qformer import BERT_BASE
    if not config:
        raise SystemExit('hf-blip2 / hf-instructblip need --config (the BLIP-2 / InstructBLIP '
                         'config): head counts and the LLM are not in the weights')
    model = Config.fromfile(config).model
    vit = model.visual_encoder.get('arch', 'base')
    qformer = model.get('qformer') or {}
    qf = dict(BERT_BASE, **(qformer.get('bert') or {}),
              cross_attention_frequency=qformer.get('cross_attention_freq', 2))
    llm = model.get('llm')
    if llm is None:
        raise SystemExit(f'{config} is a stage-1 config: the HF generation layouts need an LLM')
    if llm.get('path'):
        text_config, llm_sd = read_hf_folder(llm['path'])
        if not any(k.startswith('llm.model.') for k in sd):
            print(f'LLM weights from {llm["path"]} (SRC has none)')
            sd = dict(sd, **{'llm.model.' + k: v for k, v in llm_sd.items()})
    else:  # a config dict, as the tests build tiny LLMs
        import transformers
        fields = dict(llm['config'])
        text_config = getattr(transformers, LLM_ARCHS[fields.pop('type')][0])(**fields).to_dict()
    vision_eps = model.visual_encoder.get('norm_eps', 1e-6)
    if model.get('ln_vision_eps', 1e-5) != vision_eps:
        print(f'note: HF has one LayerNorm epsilon for the tower and post_layernorm (ln_vision): '
              f'{vision_eps} is written; ln_vision used {model.get("ln_vision_eps", 1e-5)}')
    return sd, dict(vision_heads=(ARCHS[vit] if isinstance(vit, str) else vit)['num_heads'],
                    qformer=qf, text_config=text_config, vision_eps=vision_eps)


def export_hf(converted, src, dst, dst_format, force=False, config=None, num_heads=None,
              decoder_num_heads=None):
    """Write ``converted`` as a Hugging Face model folder DST."""
    if dst_format in HF_BLIP2_FORMATS:
        sd, options = blip2_export_options(config, converted.state_dict)
        hf_config, sd, dropped = blip2_to_hf_export(
            sd, dst_format == 'hf-instructblip', **options)
        print(f'{src}: {converted.src_format} layout -> {hf_config["architectures"][0]} '
              f'({len(sd)} tensors)')
        for key, reason in converted.dropped + dropped:
            print(f'  dropped {key}: {reason}')
        write_hf_folder(dst, hf_config, sd, force=force)
        print(f'wrote {dst}/config.json and {dst}/model.safetensors')
        return
    if dst_format in HF_BLIP_FORMATS:
        hf_config, sd, dropped = blip_to_hf(converted.state_dict, dst_format,
                                            **blip_export_options(config))
        print(f'{src}: {converted.src_format} BLIP layout -> {hf_config["architectures"][0]} '
              f'({len(sd)} tensors); left out: {sorted({k.split(".")[0] for k, _ in dropped})}')
        write_hf_folder(dst, hf_config, sd, force=force)
        print(f'wrote {dst}/config.json and {dst}/model.safetensors')
        return
    options = {}
    if config:
        from mmengine.config import Config
        options = hf_options(Config.fromfile(config).model)
    options.update({k: v for k, v in (('num_heads', num_heads),
                                      ('decoder_num_heads', decoder_num_heads)) if v})
    hf_config, sd, dropped = to_hf(converted.state_dict, dst_format, **options)
    print(f'{src}: {converted.src_format} layout -> {hf_config["architectures"][0]} '
          f'({len(sd)} tensors)')
    for key, reason in converted.dropped + dropped:
        print(f'  dropped {key}: {reason}')
    write_hf_folder(dst, hf_config, sd, force=force)
    print(f'wrote {dst}/config.json and {dst}/model.safetensors')


def convert(src, dst, src_format='auto', dst_format='mmmim', force=False, allow_pickle=False,
            config=None, num_heads=None, decoder_num_heads=None):
    if osp.exists(dst) and not force:  # before the (possibly long) read
        raise SystemExit(f'{dst} exists; pass --force to overwrite it')
    converted = read_source(src, src_format, allow_pickle)
    if dst_format in HF_FORMATS + HF_BLIP_FORMATS + HF_BLIP2_FORMATS:
        return export_hf(converted, src, dst, dst_format, force, config, num_heads,
                         decoder_num_heads)
    sd = converted.state_dict
    if dst_format == 'timm':
        sd = to_timm(sd)
    elif dst_format == 'mmseg':
        sd = to_mmseg(sd)
    elif dst_format == 'blip-official':
        sd = blip_to_official(sd)
    print(f'{src}: {converted.src_format} layout, {len(sd)} tensors -> {dst_format} layout')
    for key, reason in converted.dropped:
        print(f'  dropped {key}: {reason}')
    if dst_format == 'mmmim':
        obj = dict(state_dict=sd, meta=dict(converted_from=converted.src_format, source=src))
    elif dst_format == 'mmseg':
        obj = sd  # as mmseg's beit2mmseg.py writes it
    else:
        obj = dict(model=sd)  # as the official MAE / BEiT / BLIP files
    write_checkpoint(obj, dst, force=force)
    print(f'wrote {dst}')


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert a checkpoint between layouts')
    parser.add_argument('src', help='source file or URL, or a Hugging Face model folder')
    parser.add_argument('dst', help='output file (.pth or .safetensors), or folder (hf-*)')
    parser.add_argument('--src-format', default='auto', choices=('auto', ) + FORMATS)
    parser.add_argument('--dst-format', default='mmmim',
                        choices=('mmmim', 'timm', 'mmseg', 'blip-official') + HF_FORMATS
                        + HF_BLIP_FORMATS + HF_BLIP2_FORMATS)
    parser.add_argument('--config', help='training config of SRC (hf-*: head counts, norm eps, '
                        'mask ratio, norm_pix)')
    parser.add_argument('--num-heads', type=int, help='encoder attention heads (hf-*)')
    parser.add_argument('--decoder-num-heads', type=int, help='MAE decoder heads (hf-vitmae)')
    parser.add_argument('--force', action='store_true', help='overwrite DST')
    parser.add_argument('--allow-pickle', action='store_true',
                        help='load SRC with full unpickling (runs code from the file: trusted '
                        'files only)')
    args = parser.parse_args(argv)
    convert(args.src, args.dst, args.src_format, args.dst_format, args.force, args.allow_pickle,
            args.config, args.num_heads, args.decoder_num_heads)


if __name__ == '__main__':
    main()
