import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"',
                    (here / "keras_lookahead" / "__init__.py").read_text()).group(1)

setup(
    # "keras-lookahead" on PyPI is an unrelated 2019 project; the import name stays keras_lookahead.
    name="lookahead-keras",
    version=version,
    description="Lookahead optimizer (k steps forward, 1 step back) for every Keras: "
                "inject into a compiled model, exact and in-graph.",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["keras_lookahead", "keras_lookahead.*"]),
    python_requires=">=3.7",
    # The user brings their own Keras/TensorFlow stack; nothing framework-specific is required.
    install_requires=["packaging", "numpy"],
    entry_points={"console_scripts": ["lookahead-keras=keras_lookahead.__main__:main"]},
    extras_require={
        "compare": ["scikit-learn", "matplotlib"],
        "test": ["pytest"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
