"""Build script: only what pyproject.toml cannot say (everything else is there).

The shipped ``configs/`` and ``styles/`` folders stay at the top of the source tree (the product's
layout: users, the README and the service file point there; git holds them once) and travel in the
wheel inside the package, as ``realtime/_data/configs`` and ``realtime/_data/styles``, where
``realtime.resources`` finds them with ``importlib.resources``.  ``package_dir`` maps the folders
there.  pyproject.toml could map them as well, but only beside an explicit list of every
subpackage (its ``packages.find`` cannot add mapped ones) that each new subpackage would have to
join; here ``find_packages`` keeps finding them.  Which files travel: ``package-data`` in
pyproject.toml.
"""

from setuptools import find_packages, setup

SHIPPED = {"realtime._data.configs": "configs", "realtime._data.styles": "styles"}

setup(packages=[*find_packages(include=["realtime", "realtime.*"]), *SHIPPED], package_dir=SHIPPED)
