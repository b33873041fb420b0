"""Where the contract's JSON files are."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONTRACT_DIR_ENV = "FT_CONTRACT_DIR"


def contract_dir() -> Path:
    """`FT_CONTRACT_DIR`, else the repository's `contract/` (this file is `contract/python/ft_contract/`)."""
    configured = os.environ.get(CONTRACT_DIR_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[2]


def read_json(name: str) -> Any:
    path = contract_dir() / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} not found; set {CONTRACT_DIR_ENV} to the contract directory"
        ) from error
