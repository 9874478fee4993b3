"""Profile rules as firewall rules: matching by direction, protocol and port; optional; clouds."""

from __future__ import annotations

import textwrap

import pytest

from resolver.errors import ProfileError
from resolver.models import ServiceTag
from resolver.profiles import parse_profile, render_profile, resolve_profile
from resolver.regions import RegionIndex

PROFILE = textwrap.dedent(
    """\
    [[rule]]
    direction = "inbound"
    ports = "29876-29877"
    tag = "BatchNodeManagement"

    [[rule]]
    direction = "outbound"
    ports = "443,8080-8090"
    tag = "Storage.{region}"

    [[rule]]
    direction = "outbound"
    ports = "*"
    protocol = "udp"
    tag = "AzureMonitor"
    optional = true

    [[rule]]
    direction = "outbound"
    ports = "123"
    protocol = "any"
    tag = "AzureFrontDoor.Frontend"
    clouds = ["public", "usgov"]
    """
)


def _tag(name: str, region: str = "") -> ServiceTag:
    return ServiceTag(
        name, region, 1 if region else 0, name.split(".")[0], None, 1, ("10.0.0.0/8",)
    )


def _resolve(cloud: str, names: list[ServiceTag]):
    tags = {t.name: t for t in names}
    profile = parse_profile(PROFILE, "p.toml")
    return resolve_profile(
        profile,
        cloud=cloud,
        region_text="westus",
        tags=tags,
        regions=RegionIndex.from_tags(tags.values()),
    )


ALL = [_tag("BatchNodeManagement"), _tag("Storage.WestUS", "westus"), _tag("AzureMonitor")]


@pytest.mark.parametrize(
    ("direction", "protocol", "port", "expected"),
    [
        (
            None,
            None,
            None,
            ["BatchNodeManagement", "Storage.{region}", "AzureMonitor", "AzureFrontDoor.Frontend"],
        ),
        ("inbound", None, None, ["BatchNodeManagement"]),
        ("outbound", "tcp", 443, ["Storage.{region}"]),
        ("outbound", "tcp", 8085, ["Storage.{region}"]),
        ("outbound", "tcp", 8091, []),
        ("outbound", "udp", 53, ["AzureMonitor"]),  # ports "*" match any port
        ("outbound", "udp", 123, ["AzureMonitor", "AzureFrontDoor.Frontend"]),  # "any" matches udp
        ("inbound", "tcp", 29877, ["BatchNodeManagement"]),
        ("inbound", "tcp", 29878, []),
    ],
)
def test_select_by_direction_protocol_and_port(direction, protocol, port, expected):
    resolved = _resolve("public", ALL + [_tag("AzureFrontDoor.Frontend")])
    chosen = resolved.select(direction, protocol, port)
    assert [r.rule.tag for r in chosen] == expected


def test_missing_tag_counts_unless_the_rule_is_optional():
    resolved = _resolve("public", [_tag("BatchNodeManagement"), _tag("Storage.WestUS", "westus")])
    # AzureMonitor is optional, AzureFrontDoor.Frontend is not
    assert [r.rule.tag for r in resolved.missing] == ["AzureFrontDoor.Frontend"]


def test_clouds_allow_list_skips_the_rule_elsewhere():
    resolved = _resolve("china", ALL)
    skipped = {r.rule.tag: r.skipped_reason for r in resolved.rules if r.skipped_reason}
    assert skipped == {"AzureFrontDoor.Frontend": "not needed in China"}
    assert resolved.missing == ()


def test_optional_and_clouds_round_trip():
    profile = parse_profile(PROFILE, "p.toml", default_name="p")
    assert parse_profile(render_profile(profile), "p.toml") == profile
    frontdoor = profile.rules[3]
    assert frontdoor.clouds == frozenset({"Public", "AzureGovernment"})
    assert profile.rules[2].optional and not profile.rules[0].optional


@pytest.mark.parametrize(
    ("line", "phrase"),
    [
        ('optional = "yes"', "'optional' must be true or false"),
        ('clouds = ["Mars"]', "unknown cloud 'Mars'"),
        ('clouds = "public"', "must be a list"),
        ('clouds = ["china"]\nskip_clouds = ["China"]', "in both 'clouds' and 'skip_clouds'"),
    ],
)
def test_bad_optional_and_clouds_are_reported_with_their_line(line, phrase):
    text = f'[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "AzureCloud"\n{line}\n'
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "bad.toml")
    assert any(phrase in p and p.startswith("bad.toml:5:") for p in caught.value.problems), (
        caught.value.problems
    )
