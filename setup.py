"""Packaging beyond what pyproject.toml can say: modules the wheel leaves out.

pyproject.toml ships only the shop's packages (not ``bench``) and excludes the test
packages; these are single modules inside shipped packages, needed only by the test
suite and the benchmarks.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

NOT_SHIPPED = {
    "shop.test_settings",
    "shop.bench_settings",
}


class BuildPyWithoutDevModules(build_py):
    def find_package_modules(self, package, package_dir):
        return [
            (pkg, module, path)
            for pkg, module, path in super().find_package_modules(package, package_dir)
            if f"{pkg}.{module}" not in NOT_SHIPPED
        ]


setup(cmdclass={"build_py": BuildPyWithoutDevModules})
