"""Maps the `contract/`, `trainer/` and `operator/` folders to `ouroboros.contract`, `ouroboros.trainer`
and `ouroboros.operator`.

pyproject.toml holds all metadata; this file only lists the packages, because
setuptools' package discovery cannot rename folders on its own.
"""
from setuptools import find_packages, setup

ROOTS = {"ouroboros.contract": "contract", "ouroboros.trainer": "trainer", "ouroboros.operator": "operator"}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages)
