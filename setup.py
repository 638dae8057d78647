"""The metadata is in pyproject.toml; this shim lets tools that call setup.py still build."""
from setuptools import setup

setup()
