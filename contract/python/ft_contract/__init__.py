"""The platform's catalog (`contract/catalog.json`) and cross-language contract (`contract/platform.json`).

The JSON files are the one statement of these facts; the Lambdas read them too
(`lambdas/core/catalog/catalog-file.ts`, `lambdas/core/contract.ts`). This package finds them next to
itself (`contract/python/ft_contract` → `contract/`) or in `FT_CONTRACT_DIR` (the images copy the
directory to `/opt/contract`), and validates them on load.
"""

from .catalog import (
    Catalog,
    CatalogError,
    HyperparameterSpec,
    MethodSpec,
    ModelSpec,
    load_catalog,
    parse_model,
)
from .platform import FtHeaders, HeaderError, PlatformContract, load_platform, read_ft_headers

__all__ = [
    "Catalog",
    "CatalogError",
    "HyperparameterSpec",
    "MethodSpec",
    "ModelSpec",
    "FtHeaders",
    "HeaderError",
    "PlatformContract",
    "load_catalog",
    "load_platform",
    "parse_model",
    "read_ft_headers",
]
