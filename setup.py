"""Build hook for the native part of deaios: the batched Keccak-256 extension (see pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "deaios._keccak",
            sources=["offchain/deaios/native/keccak.c"],
            depends=["offchain/deaios/native/keccak_f1600.h"],
            extra_compile_args=["-O3"],
        )
    ]
)
