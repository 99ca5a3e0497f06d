"""Build the optional C accelerator, framing._speedups (everything else is in pyproject.toml).

``optional=True``: a machine without a C compiler (or Python headers) still
installs framing, pure Python; ``framing._accel.available`` then says False.
``pip install -e .`` builds the extension in place, beside framing/_accel.py.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("framing._speedups", sources=["framing/_speedups.c"], optional=True),
    ],
)
