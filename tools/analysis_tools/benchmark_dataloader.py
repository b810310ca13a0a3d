"""Images/s of a config's train_dataloader on real-size JPEGs, per worker and per CPU core.

    python tools/analysis_tools/benchmark_dataloader.py CONFIG [--data-root data/realsize]
        [--pipelines train NAME ...] [--num-workers 1 2] [--images 1024] [--batch-size 64]
        [--passes 5] [--psnr 256] [--candidates 128]

Builds the config's ``train_dataloader`` (dataset + pipeline + collate) with
MMEngine's builder on ``--data-root`` (make it with ``tools/misc/make_demo_data.py
data/realsize --real-size``) and iterates it once per pass. ``--pipelines``
names the pipelines to compare: ``train`` is the dataloader's own, any other
name a pipeline list defined in the config (``mmpretrain_train_pipeline`` ...);
``NAME:cv2`` / ``NAME:pillow`` is that pipeline with every decode and resize
on that backend.
Passes interleave the pipelines and worker counts, so that a busy machine
slows them alike; the table gives medians over the passes:

- img/s: images over wall time, after the first batch of each worker;
- img/s per worker: the same over the number of worker processes;
- img/s per core: images over the CPU seconds that the main process and the
  workers spent on the run (Linux /proc), i.e. the rate of one busy core;
  the ratio column compares it with the first pipeline's.

``--psnr N`` checks ``RandomResizedCropFromFile`` on N images against a full
decode with the same crop and resize, and against the default pipeline's PIL
resize. ``--candidates N`` times the decoding and resizing candidates alone.
"""
import argparse
import copy
import glob
import io
import math
import os
import os.path as osp
import platform
import statistics
import time

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar
from PIL import Image

import mmmim  # noqa: F401  (registers mmmim's transforms)
from mmmim.datasets import LoadImageOrSkip
from mmmim.registry import TRANSFORMS


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux); NaN elsewhere."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, IndexError, ValueError):
        return math.nan


def with_backend(pipeline: list, backend: str) -> list:
    """``pipeline`` with its image loading and RandomResizedCrop on ``backend``."""
    out, changed = [], False
    for step in pipeline:
        step = dict(step)
        if step['type'].split('.')[-1] in ('LoadImageFromFile', 'LoadImageOrSkip'):
            step['imdecode_backend'], changed = backend, True
        elif step['type'].split('.')[-1] == 'RandomResizedCrop':
            step['backend'], changed = backend, True
        out.append(step)
    if not changed:
        raise ValueError(f'no image loading or RandomResizedCrop step to put on {backend}')
    return out


def build_loader(cfg: Config, pipeline: list, args, num_workers: int):
    """The config's train_dataloader on the benchmark images with ``pipeline``."""
    dl = copy.deepcopy(cfg.train_dataloader)
    dl.dataset.data_root = args.data_root
    dl.dataset.pipeline = copy.deepcopy(pipeline)
    dl.dataset.indices = args.images
    dl.num_workers = num_workers
    dl.persistent_workers = False  # one loader per measurement
    dl.pin_memory = False  # host-only benchmark
    if args.batch_size:
        dl.batch_size = args.batch_size
    return Runner.build_dataloader(dl, seed=0)


def run_once(loader, bar: ProgressBar) -> dict:
    """Iterate ``loader`` once; wall time after warm-up, CPU time of all its processes."""
    main_cpu = time.process_time()
    it = iter(loader)
    pids = [w.pid for w in getattr(it, '_workers', [])]
    warm = max(1, loader.num_workers)  # the first batch of every worker includes its start
    total = timed = 0
    start = None
    for i in range(len(loader)):
        n = len(next(it)['inputs'])
        total += n
        if i == warm - 1:
            start = time.perf_counter()
        elif i >= warm:
            timed += n
        bar.update()
    wall = time.perf_counter() - start
    cpu = time.process_time() - main_cpu + sum(_cpu_seconds(pid) for pid in pids)
    del it
    return dict(ips=timed / wall, cpu_ips=total / cpu)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))  # 148 dB: identical


def check_psnr(step: dict, files: list) -> str:
    """PSNR of RandomResizedCropFromFile against full decode + the same crop + resize."""
    t = TRANSFORMS.build(step)
    same, pil, factors = [], [], []
    for path in files:
        out = t({'img_path': path})
        x1, y1, x2, y2 = out['crop_bbox']
        crop = cv2.imread(path, cv2.IMREAD_COLOR)[y1:y2, x1:x2]
        refs = (t._resize(crop),  # the fast path's own resize on the full decode
                np.asarray(Image.fromarray(crop).resize(t.scale[::-1], Image.BICUBIC)))  # the default
        if out['flip']:
            refs = [r[:, ::-1] for r in refs]
        same.append(psnr(out['img'], refs[0]))
        pil.append(psnr(out['img'], refs[1]))
        factors.append(out['decode_factor'])
    counts = ', '.join(f'1/{k}: {factors.count(k)}' for k in sorted(set(factors)))
    reduced = [p for p, k in zip(same, factors) if k > 1]

    def fmt(v):
        return ' / '.join(f'{x:.1f}' for x in (np.mean(v), min(v))) if v else 'none'

    return (f'PSNR of {step["type"]} on {len(files)} images (mean / min, dB): reduced-size decodes '
            f'vs full decode + same crop + same resize {fmt(reduced)} (full-size decodes are '
            f'identical); all vs full decode + same crop + PIL bicubic (the default pipeline) '
            f'{fmt(pil)}; decode factors {counts}')


def candidates(files: list, passes: int) -> list:
    """CPU ms per image of decoding and resizing candidates, interleaved; PSNR vs PIL bicubic."""
    from mmpretrain.datasets.transforms import RandomResizedCrop
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    data = [open(f, 'rb').read() for f in files]
    full = [cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR) for d in data]
    rrc = RandomResizedCrop(224, crop_ratio_range=(0.2, 1.0))
    np.random.seed(0)
    crops = []
    for img in full:
        top, left, h, w = rrc.rand_crop_params(img)
        crops.append(img[top:top + h, left:left + w])

    def pil_decode(d):
        with Image.open(io.BytesIO(d)) as im:
            return np.array(im.convert('RGB'))

    def torch_resize(c, mode='bicubic'):
        x = torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1)[None]
        return torch.nn.functional.interpolate(x, size=(224, 224), mode=mode,
                                               antialias=True)[0].permute(1, 2, 0).numpy()

    decoders = {
        'decode: cv2 full size': lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR),
        'decode: cv2 at 1/8 (entropy-decoding floor)':
            lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_REDUCED_COLOR_8),
        'decode: PIL full size': pil_decode,
    }
    try:  # not a dependency: measured where installed (pip install simplejpeg)
        import simplejpeg
        h, w = full[0].shape[:2]
        decoders['decode: simplejpeg full size'] = lambda d: simplejpeg.decode_jpeg(d, 'BGR')
        decoders['decode: simplejpeg at 5/8 (libjpeg M/8 scaling)'] = lambda d: simplejpeg.decode_jpeg(
            d, 'BGR', min_height=math.ceil(h * 5 / 8), min_width=math.ceil(w * 5 / 8))
    except ImportError:
        pass
    resizers = {
        'resize: PIL bicubic (default pipeline)':
            lambda c: np.asarray(Image.fromarray(c).resize((224, 224), Image.BICUBIC)),
        'resize: torch antialiased bicubic (fast path)': torch_resize,
        'resize: cv2 INTER_CUBIC (no antialias)':
            lambda c: cv2.resize(c, (224, 224), interpolation=cv2.INTER_CUBIC),
        'resize: cv2 INTER_AREA': lambda c: cv2.resize(c, (224, 224), interpolation=cv2.INTER_AREA),
    }
    times = {k: [] for k in (*decoders, *resizers)}
    for _ in range(passes):
        for name, fn in decoders.items():
            start = time.process_time()
            for d in data:
                fn(d)
            times[name].append((time.process_time() - start) / len(data) * 1e3)
        for name, fn in resizers.items():
            start = time.process_time()
            for c in crops:
                fn(c)
            times[name].append((time.process_time() - start) / len(crops) * 1e3)
    refs = [resizers['resize: PIL bicubic (default pipeline)'](c) for c in crops]
    rows = []
    for name in times:
        quality = ''
        if name == 'resize: PIL bicubic (default pipeline)':
            quality = 'reference'
        elif name in resizers:
            values = [psnr(resizers[name](c), r) for c, r in zip(crops, refs)]
            quality = f'{np.mean(values):.1f} / {min(values):.1f}'
        rows.append(f'| {name} | {statistics.median(times[name]):.2f} | {quality} |')
    return ['| candidate (one core) | CPU ms / image | PSNR vs PIL bicubic, mean / min (dB) |',
            '|---|---|---|', *rows]


def machine() -> str:
    import mmcv
    import mmengine
    import mmpretrain
    import PIL
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; '
            f'Python {platform.python_version()}, torch {torch.__version__}, '
            f'opencv {cv2.__version__}, pillow {PIL.__version__}, numpy {np.__version__}, '
            f'mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
            f'mmpretrain {mmpretrain.__version__}')


def main(argv=None):
    parser = argparse.ArgumentParser(description='Data loader benchmark')
    parser.add_argument('config')
    parser.add_argument('--data-root', default='data/realsize',
                        help='image folder in the config dataset\'s layout')
    parser.add_argument('--pipelines', nargs='+', default=['train'],
                        help='"train" (the dataloader\'s own) or names of pipelines in the config')
    parser.add_argument('--num-workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--images', type=int, default=1024, help='images per pass')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='0 keeps the config\'s batch size')
    parser.add_argument('--passes', type=int, default=5)
    parser.add_argument('--psnr', type=int, default=0, metavar='N',
                        help='check the fast path\'s pixels on N images')
    parser.add_argument('--candidates', type=int, default=0, metavar='N',
                        help='time decoders and resizers alone on N images')
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmmim'))
    pipelines = {}
    for spec in args.pipelines:
        name, _, backend = spec.partition(':')
        pipeline = cfg.train_dataloader.dataset.pipeline if name == 'train' else cfg.get(name)
        if not isinstance(pipeline, (list, tuple)):
            raise KeyError(f'{args.config} has no pipeline list named {name!r}')
        pipelines[spec] = with_backend(pipeline, backend) if backend else pipeline
    files = sorted(glob.glob(osp.join(args.data_root, '**', '*.jpg'), recursive=True))
    if not files:
        raise SystemExit(f'no JPEGs under {args.data_root}; make them with '
                         f'tools/misc/make_demo_data.py {args.data_root} --real-size')
    kb = np.mean([os.path.getsize(f) for f in files[:256]]) / 1e3
    h, w = cv2.imread(files[0]).shape[:2]
    print(f'machine: {machine()}')
    print(f'images: {args.data_root}, {len(files)} JPEGs ({w}x{h}, {kb:.0f} KB on average); '
          f'{args.images} per pass, batch {args.batch_size or cfg.train_dataloader.batch_size}, '
          f'{args.passes} passes')

    loaders = {(name, n): build_loader(cfg, p, args, n)
               for n in args.num_workers for name, p in pipelines.items()}
    for loader in loaders.values():
        if len(loader) <= max(1, loader.num_workers) + 1:
            raise SystemExit('too few batches per pass: raise --images or lower --batch-size')
    skipped = LoadImageOrSkip.num_skipped()
    bar = ProgressBar(args.passes * sum(len(loader) for loader in loaders.values()))
    results = {key: [] for key in loaders}
    for _ in range(args.passes):
        for key, loader in loaders.items():
            results[key].append(run_once(loader, bar))
    print()

    first = {}
    rows = ['| pipeline | workers | img/s | img/s per worker | img/s per core | per core vs '
            f'{args.pipelines[0]} |', '|---|---|---|---|---|---|']
    for (name, n), runs in results.items():
        ips = statistics.median(r['ips'] for r in runs)
        core = statistics.median(r['cpu_ips'] for r in runs)
        first.setdefault(n, core)
        rows.append(f'| {name} | {n} | {ips:.0f} | {ips / max(n, 1):.0f} | {core:.0f} | '
                    f'{core / first[n]:.2f}x |')
    print('\n'.join(rows))
    print(f'skipped images: {LoadImageOrSkip.num_skipped() - skipped}; load average at the end '
          f'{os.getloadavg()[0]:.1f}')

    if args.psnr:
        for name, pipeline in pipelines.items():
            for step in pipeline:
                if step['type'] in ('RandomResizedCropFromFile', 'mmmim.RandomResizedCropFromFile'):
                    np.random.seed(0)
                    sample = files[::max(1, len(files) // args.psnr)][:args.psnr]
                    print(f'{name}: {check_psnr(step, sample)}')
    if args.candidates:
        print('\n'.join(candidates(files[:args.candidates], args.passes)))


if __name__ == '__main__':
    main()
