"""The torch-free proxy catalog agrees with the registry, and store-only paths stay torch-free."""

from __future__ import annotations

import subprocess
import sys

from rankzc.proxies import catalog
from rankzc.proxies.registry import get_proxy, proxy_names, registered


def test_catalog_names_and_data_needs_equal_the_registry():
    assert list(catalog.PROXY_NAMES) == proxy_names()
    free = {n for n, spec in registered().items() if not spec.needs_data}
    assert catalog.DATA_FREE == free
    assert catalog.data_reading(proxy_names()) == [n for n in proxy_names() if n not in free]
    assert all(get_proxy(n).name == n for n in catalog.PROXY_NAMES)


def test_unreproducible_from_a_recorded_dict():
    study = {"data": "study:ntu60-xview", "proxies": ["zen", "snip", "flops", "nwot"]}
    assert catalog.unreproducible(study) == ["snip", "nwot"]
    assert catalog.unreproducible({**study, "data": "synthetic"}) == []
    msg = catalog.unreproducible_message(["snip", "nwot"], study)
    assert "2 proxies read the study's data (NTU RGB+D 60, cross-view)" in msg
    assert "--proxies zen,flops" in msg and "\n" not in msg


def test_importing_the_catalog_and_the_registry_leaves_torch_out():
    code = (
        "import sys\n"
        "from rankzc.proxies import catalog\n"
        "from rankzc.proxies.registry import DEFINITIONS, changed_since\n"
        "from rankzc.ranking.features import check_proxy_subset\n"
        "catalog.unreproducible({'data': 'study:ntu60-xview', 'proxies': ['zen']})\n"
        "print(sorted(m for m in ('torch', 'torch_geometric') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_memory_budget_variable_is_checked(monkeypatch):
    import pytest

    from rankzc.errors import RankzcError
    from rankzc.proxies.memory import memory_budget

    monkeypatch.setenv("RANKZC_MEMORY_GB", "2")
    assert memory_budget(None) == 2 * 2**30 and memory_budget(2**30) == 2**30
    for bad in ("inf", "nan", "-1", "0", "lots", "1e400"):
        monkeypatch.setenv("RANKZC_MEMORY_GB", bad)
        with pytest.raises(RankzcError, match="RANKZC_MEMORY_GB"):
            memory_budget(None)
