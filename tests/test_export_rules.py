"""Rule sets from a profile (issue 11 with issue 13's special addresses): VirtualNetwork is the
user's --local space, AzureLoadBalancer the documented constant, Internet any address; NSGs name
them; a rule with no address is left out with a sentence, never opened to any address."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import cli_env, snapshot_bytes, tag_json

PROFILE = """
description = "a workload behind a firewall"

[[rule]]
direction = "inbound"
ports = "443"
tag = "Frontend"
purpose = "clients"

[[rule]]
direction = "inbound"
ports = "8080"
tag = "AzureLoadBalancer"
purpose = "health probes"

[[rule]]
direction = "outbound"
ports = "1433"
tag = "VirtualNetwork"
purpose = "the database next door"
"""


@pytest.fixture
def aztags(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "shop.toml").write_text(PROFILE)
    data = tmp_path / "ServiceTags_Public_20250106.json"
    values = [
        tag_json("Frontend", ["20.0.0.0/24", "2001:db8::/48"], features=["API", "NSG"]),
        tag_json("Filler", [f"10.{i}.0.0/16" for i in range(10)]),
    ]
    data.write_bytes(snapshot_bytes(1, values))
    env = cli_env(tmp_path / "a.db", tmp_path)
    env["AZTAGS_PROFILES_DIR"] = str(tmp_path / "profiles")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    assert invoke("import", str(data)).exit_code == 0
    return invoke


SHOP = ["export", "--profile", "shop", "--rules"]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_special_addresses_become_rules_of_their_own(aztags):
    result = aztags(*SHOP, "-f", "csv", "--local", "10.9.0.0/24")
    assert result.exit_code == 0, result.output
    rows = {(r["tag"], r["prefix"]) for r in _rows(result.stdout)}
    assert ("AzureLoadBalancer", "168.63.129.16/32") in rows
    assert ("VirtualNetwork", "10.9.0.0/24") in rows  # your own space: --local
    assert ("Frontend", "20.0.0.0/24") in rows
    directions = {r["tag"]: (r["direction"], r["ports"]) for r in _rows(result.stdout)}
    assert directions["AzureLoadBalancer"] == ("inbound", "8080")


def test_virtual_network_without_local_is_left_out_with_a_sentence(aztags):
    result = aztags(*SHOP, "-f", "csv")
    assert result.exit_code == 0
    assert "VirtualNetwork" not in {r["tag"] for r in _rows(result.stdout)}
    assert "give it with --local CIDR" in result.stderr


def test_nsg_names_special_addresses_and_nsg_tags(aztags):
    result = aztags(*SHOP, "-f", "azure-nsg", "--local", "10.9.0.0/24")
    assert result.exit_code == 0, result.output
    rules = [r["properties"] for r in json.loads(result.stdout)["resources"] if "properties" in r]
    remote = {
        (
            r.get("sourceAddressPrefix")
            if r["direction"] == "Inbound"
            else r.get("destinationAddressPrefix")
        )
        for r in rules
    }
    assert {"Frontend", "AzureLoadBalancer", "VirtualNetwork"} <= remote


def test_nsg_tag_rule_keeps_to_the_family_asked(aztags):
    result = aztags(*SHOP, "-f", "azure-nsg", "--ipv4")
    assert result.exit_code == 0, result.output
    rules = [r["properties"] for r in json.loads(result.stdout)["resources"] if "properties" in r]
    frontend = [r for r in rules if r.get("sourceAddressPrefix") == "Frontend"]
    local = [
        r.get("destinationAddressPrefixes") or [r.get("destinationAddressPrefix")] for r in frontend
    ]
    assert frontend and all(side == ["0.0.0.0/0"] for side in local)  # not "*": IPv4 only


@pytest.mark.parametrize(
    ("given", "local"), [("10.9.0.5/24", "10.9.0.0/24"), ("10.9.0.5", "10.9.0.5/32")]
)
def test_local_addresses_are_read_as_networks_once_for_every_format(aztags, given, local):
    """--local with host bits or without a length is the network it names, in the objects
    (VirtualNetwork) and in the rules' local side alike, whatever the format."""
    rows = _rows(aztags(*SHOP, "-f", "csv", "--local", given).stdout)
    assert {r["prefix"] for r in rows if r["tag"] == "VirtualNetwork"} == {local}
    assert {r["local"] for r in rows} == {local}
    nft = aztags(*SHOP, "-f", "nftables", "--local", given)
    assert nft.exit_code == 0, nft.output  # a bare address was a crash in the nftables rules
    assert local.removesuffix("/32") in nft.stdout and "10.9.0.5/24" not in nft.stdout
