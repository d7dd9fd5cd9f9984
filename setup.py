"""Build configuration for the one C extension; all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otterscope.otlp._fastspans",
            ["src/otterscope/otlp/_fastspans.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
            optional=False,
        )
    ]
)
