"""The numerical solver core: arrays and small frozen problem objects in, frozen results out.

This package never imports ``territory``, pandas or geopandas, so benchmarks and services can
call it directly.
"""

__all__: list[str] = []
