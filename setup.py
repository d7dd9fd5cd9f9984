"""Build configuration for the one C extension; all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

_DIR = "src/otterscope/otlp/"
_SOURCES = ["wire", "json", "attrs", "spans", "logs", "metrics", "index"]

setup(
    ext_modules=[
        Extension(
            "otterscope.otlp._fastotlp",
            [_DIR + "_fastotlp.c"] + [f"{_DIR}_fastotlp_{name}.c" for name in _SOURCES],
            depends=[_DIR + "_fastotlp.h"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
            optional=False,
        )
    ]
)
