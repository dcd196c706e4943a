"""Maps the component folders into the `triskel` namespace.

`operator/` is `triskel.operator`, `router/` is `triskel.router`, `simulator/` is
`triskel.simulator`, `workers/` is `triskel.workers`. The folders themselves must
never be on sys.path: a top-level package named `operator` would shadow the
standard library's.
"""

from setuptools import Extension, find_packages, setup

COMPONENT_FOLDERS = {
    "triskel.operator": "operator",
    "triskel.router": "router",
    "triskel.simulator": "simulator",
    "triskel.workers": "workers",
}

package_dir = {"": "src"}
packages = find_packages("src")
for package, folder in COMPONENT_FOLDERS.items():
    package_dir[package] = folder
    packages += [package] + [f"{package}.{sub}" for sub in find_packages(folder)]

# The prefix indexes' compiled holder map (router/scheduling/producers/holders.py): built
# where a C compiler is; without one the install goes on and the Python one is used.
holder_map = Extension(
    "triskel.router.scheduling.producers._holder_map",
    sources=["router/scheduling/producers/_holder_map.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

# The scheduler's weighted sum of scores (router/scheduling/score_sum.py), likewise.
# -ffp-contract=off: no multiply and add fused into one rounding (the totals must be
# numpy's); -O3 -fno-trapping-math: the clamp's selects become vector code (ignoring FP
# exception flags, which nothing reads, changes no value).
score_sum = Extension(
    "triskel.router.scheduling._score_sum",
    sources=["router/scheduling/_score_sum.c"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-trapping-math"],
    optional=True,
)

setup(packages=packages, package_dir=package_dir, ext_modules=[holder_map, score_sum])
