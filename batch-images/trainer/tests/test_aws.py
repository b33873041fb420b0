"""The trainer's AWS clients find the region the way the platform's processes set it."""

from __future__ import annotations

import pytest

from ft_trainer.aws import client_options


def test_the_region_comes_from_aws_region_else_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert client_options() == {"endpoint_url": "http://127.0.0.1:4566", "region_name": "eu-west-1"}
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    assert client_options() == {"endpoint_url": None, "region_name": "ap-southeast-1"}
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert client_options()["region_name"] is None
