"""Install mmmim. Use tools/misc/setup_env.sh for the pinned environment."""
import re
from pathlib import Path

from setuptools import find_packages, setup


def requirements(name):
    lines = Path('requirements', name).read_text().splitlines()
    return [line for line in (s.split('#')[0].strip() for s in lines) if line]


version = re.search(r"__version__ = '(.+)'", Path('mmmim/version.py').read_text()).group(1)

setup(
    name='mmmim',
    version=version,
    description='Masked image modeling (MAE, BEiT, BEiT v2, CAE) on OpenMMLab',
    long_description=Path('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.10',
    install_requires=requirements('runtime.txt'),
    extras_require=dict(
        tests=requirements('tests.txt'),
        downstream=requirements('optional.txt'),
    ),
    license='Apache License 2.0',
)
