"""Exports for clouds and hosts (issue 11): azure-nsg (ARM security rules, --rules from a profile),
azure-ipgroup, aws-prefix-list (CloudFormation; delta as a modify-managed-prefix-list script),
windows-firewall (PowerShell), terraform (.tfvars and .tfvars.json).

Fidelity: each output is parsed back to prefixes and must cover exactly the query's address
space, computed from the raw published JSON (tests/helpers.py). Tools: ``terraform console``
reads the .tfvars back, and the AWS delta script runs with the real AWS CLI against a local
fake EC2 endpoint that enforces the API's rules (at most 100 entries per call, the version,
MaxEntries, no duplicate or missing entry). There is no PowerShell or Azure here: those are
checked against their grammar and the documented limits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import pytest

from tests.helpers import (
    FROZEN_PROFILES,
    WEEKLY_2023,
    cli_env,
    cli_invoker,
    collapsed,
    expected_space,
    snapshot_bytes,
    tag_json,
)

DAY = WEEKLY_2023[-1]
NAMES = ["AzureCloud.westeurope", "Sql.WestEurope", "Storage"]  # both families, overlapping


def run_in(db: Path, tmp_path: Path, **env_extra: str):
    env = {**cli_env(db, tmp_path, profiles=FROZEN_PROFILES), **env_extra}
    return cli_invoker(env)


CLI_PROFILES = FROZEN_PROFILES  # the conftest's aztags fixture reads them


def family_of(prefix: str) -> int:
    return 6 if ":" in prefix else 4


# -- parsers ---------------------------------------------------------------------------------------


def nsg_rules(text: str) -> list[dict]:
    """The template's rules: name, NSG parameter, condition, properties with the variables
    resolved (``"[variables('x')]"`` -> the list)."""
    doc = json.loads(text)
    variables = doc.get("variables", {})
    rules = []
    for resource in doc["resources"]:
        assert resource["type"] == "Microsoft.Network/networkSecurityGroups/securityRules"
        m = re.fullmatch(r"\[concat\(parameters\('(\w+)'\), '/([^']+)'\)\]", resource["name"])
        assert m, resource["name"]
        props = dict(resource["properties"])
        for side in ("source", "destination"):
            value = props.get(f"{side}AddressPrefixes")
            if isinstance(value, str):
                ref = re.fullmatch(r"\[variables\('([^']+)'\)\]", value)
                assert ref, value
                props[f"{side}AddressPrefixes"] = variables[ref.group(1)]
        rules.append(
            {
                "nsg": m.group(1),
                "name": m.group(2),
                "condition": resource.get("condition"),
                "dependsOn": resource.get("dependsOn", []),
                **props,
            }
        )
    return rules


def remote(rule: dict) -> list[str]:
    side = "source" if rule["direction"] == "Inbound" else "destination"
    return rule.get(f"{side}AddressPrefixes", [])


def parse_nsg(text: str) -> list[str]:
    """Every prefix of the list once: each chunk is written as an inbound and an outbound rule."""
    return [p for r in nsg_rules(text) if r["direction"] == "Inbound" for p in remote(r)]


def parse_ipgroup(text: str) -> list[str]:
    doc = json.loads(text)
    return [p for r in doc["resources"] for p in r["properties"]["ipAddresses"]]


def prefix_lists(text: str) -> dict[str, dict]:
    """{PrefixListName: properties} of the CloudFormation template."""
    doc = json.loads(text)
    out = {}
    for resource in doc["Resources"].values():
        assert resource["Type"] == "AWS::EC2::PrefixList"
        out[resource["Properties"]["PrefixListName"]] = resource["Properties"]
    return out


def parse_aws(text: str) -> list[str]:
    return [e["Cidr"] for pl in prefix_lists(text).values() for e in pl["Entries"]]


def ps_strings(text: str) -> list[str]:
    """PowerShell single-quoted strings ('' is a quote inside one)."""
    return [s.replace("''", "'") for s in re.findall(r"'((?:[^']|'')*)'", text)]


def windows_rules(text: str) -> list[dict]:
    """Each Set-AztagsRule call: its named arguments (strings or string arrays)."""
    calls = re.findall(r"^Set-AztagsRule (.*?\n\))\n", text, re.M | re.S)
    rules = []
    for call in calls:
        args = {}
        for name, scalar, array in re.findall(
            r"-(\w+) (?:('(?:[^']|'')*')|@\(\n(.*?)\n\))", call, re.S
        ):
            args[name] = ps_strings(scalar)[0] if scalar else ps_strings(array)
        rules.append(args)
    return rules


def parse_windows(text: str) -> list[str]:
    return [p for r in windows_rules(text) for p in r["RemoteAddress"]]


def parse_tfvars(text: str) -> dict[str, list[str]]:
    """The HCL subset the export writes: ``# comments``, ``name = []`` and ``name = [ "x", ]``.
    Anything else in the file fails the parse."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    out = {}
    pos = 0
    assign = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*) = \[((?:\s*"[^"\\]*",?)*)\s*\]\s*')
    while pos < len(body):
        m = assign.match(body, pos)
        assert m, f"not HCL this parser knows at {body[pos : pos + 80]!r}"
        name, items = m.groups()
        assert name not in out, f"{name} assigned twice"
        out[name] = re.findall(r'"([^"\\]*)"', items)
        pos = m.end()
    return out


def parse_terraform(text: str) -> list[str]:
    return [p for ps in parse_tfvars(text).values() for p in ps]


def parse_terraform_json(text: str) -> list[str]:
    return [p for ps in json.loads(text).values() for p in ps]


PARSERS = {
    "azure-nsg": parse_nsg,
    "aws-prefix-list": parse_aws,
    "windows-firewall": parse_windows,
    "terraform": parse_terraform,
    "terraform-json": parse_terraform_json,
}


# -- fidelity on real files ------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", sorted(PARSERS))
@pytest.mark.parametrize("aggregate", [False, True])
def test_cloud_formats_cover_exactly_the_query(aztags, fmt, aggregate):
    result = aztags("export", *NAMES, "-f", fmt, *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    assert collapsed(PARSERS[fmt](result.stdout)) == expected_space(NAMES)


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_ipgroups_cover_exactly_the_ipv4_part(aztags, aggregate):
    """IP Groups are documented with IPv4 only: IPv6 is left out, with a warning."""
    result = aztags(
        "export", *NAMES, "-f", "azure-ipgroup", *(["--aggregate"] if aggregate else [])
    )
    assert result.exit_code == 0, result.output
    assert collapsed(parse_ipgroup(result.stdout)) == {
        **expected_space(NAMES, family=4),
        6: [],
    }
    assert "IPv6 prefixes left out" in result.stderr


@pytest.mark.realdata
def test_one_family(aztags):
    result = aztags("export", "Storage.WestEurope", "-f", "aws-prefix-list", "--ipv6")
    assert collapsed(parse_aws(result.stdout)) == expected_space(["Storage.WestEurope"], family=6)
    assert [pl["AddressFamily"] for pl in prefix_lists(result.stdout).values()] == ["IPv6"]


# -- azure-nsg -------------------------------------------------------------------------------------

RULE_NAME = re.compile(r"\w[\w.-]{0,78}[\w_]|\w")


@pytest.mark.realdata
def test_nsg_rules_keep_to_one_family_and_the_documented_limits(aztags):
    """AzureCloud has 6,399 IPv4 and 1,531 IPv6 prefixes: 4,000 per rule, and 4,000 source
    (inbound) or destination (outbound) prefixes per NSG, so it needs two NSGs."""
    result = aztags("export", "AzureCloud", "-f", "azure-nsg")
    assert result.exit_code == 0
    rules = nsg_rules(result.stdout)
    assert {(r["name"], r["direction"]) for r in rules} == {
        (f"AzureCloud-{chunk}-{d}", direction)
        for chunk in ("v4", "v4-2", "v6")
        for d, direction in (("in", "Inbound"), ("out", "Outbound"))
    }
    for rule in rules:
        assert RULE_NAME.fullmatch(rule["name"]) and len(rule["name"]) <= 80
        assert len({family_of(p) for p in remote(rule)}) == 1, rule["name"]
        assert 0 < len(remote(rule)) <= 4000
        assert 100 <= rule["priority"] <= 4096
    for direction in ("Inbound", "Outbound"):
        for nsg in {r["nsg"] for r in rules}:
            these = [r for r in rules if r["nsg"] == nsg and r["direction"] == direction]
            assert sum(len(remote(r)) for r in these) <= 4000
            assert len({r["priority"] for r in these}) == len(these)
    assert {r["nsg"] for r in rules} == {"networkSecurityGroupName", "networkSecurityGroupName2"}
    assert "AzureCloud IPv4: 6,399 prefixes split into 2 rules of at most 4,000" in result.stderr
    assert "spread over 2 NSGs" in result.stderr


@pytest.mark.realdata
def test_nsg_list_asks_for_the_traffic_at_deployment(aztags):
    result = aztags("export", "Sql.WestEurope", "-f", "azure-nsg", "--local", "10.1.0.0/24")
    doc = json.loads(result.stdout)
    params = doc["parameters"]
    for name in ("direction", "protocol", "destinationPortRange", "networkSecurityGroupName"):
        assert "defaultValue" not in params[name]  # the user must say it
    assert params["access"]["defaultValue"] == "Allow"
    rules = nsg_rules(result.stdout)
    # IPv4 only: --local has no IPv6 address, and "*" would allow more than asked
    assert {r["name"] for r in rules} == {"Sql.WestEurope-v4-in", "Sql.WestEurope-v4-out"}
    assert (
        "No --local address is IPv6, so the IPv6 rules of Sql.WestEurope are left out"
        in result.stderr
    )
    inbound, outbound = sorted(rules, key=lambda r: r["direction"])
    assert inbound["condition"] == "[equals(parameters('direction'), 'Inbound')]"
    assert inbound["destinationAddressPrefixes"] == ["10.1.0.0/24"]
    assert outbound["sourceAddressPrefixes"] == ["10.1.0.0/24"]
    assert remote(inbound) == remote(outbound) and len(remote(inbound)) == 50
    assert doc["metadata"]["description"].startswith("aztags")  # the header: JSON has no comments


@pytest.mark.realdata
def test_nsg_rules_from_a_profile_name_the_service_tags(aztags):
    result = aztags(
        "export", "--profile", "azureml", "--region", "westus", "-f", "azure-nsg", "--rules",
        "--local", "10.1.0.0/24", "--priority-base", "200",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rules = nsg_rules(result.stdout)
    expected = [  # the profile's rules, in order
        ("Inbound", "29876-29877", "BatchNodeManagement"),
        ("Inbound", "44224", "AzureMachineLearning"),
        ("Outbound", "*", "AzureActiveDirectory"),
        ("Outbound", "443", "AzureMachineLearning"),
        ("Outbound", "443", "AzureResourceManager"),
        ("Outbound", "443", "Storage.WestUS"),
        ("Outbound", "443", "AzureFrontDoor.Frontend"),
        ("Outbound", "443", "AzureContainerRegistry.WestUS"),
        ("Outbound", "443", "MicrosoftContainerRegistry.WestUS"),
    ]
    assert len(rules) == len(expected)
    for n, (rule, (direction, port, tag)) in enumerate(zip(rules, expected, strict=True)):
        assert rule["direction"] == direction and rule["access"] == "Allow"
        assert rule["protocol"] == "Tcp" and rule["destinationPortRange"] == port
        assert rule["sourcePortRange"] == "*"
        assert rule["priority"] == 200 + 10 * n
        azure, local = (
            ("source", "destination") if direction == "Inbound" else ("destination", "source")
        )
        assert rule[f"{azure}AddressPrefix"] == tag  # NSGs resolve the tag themselves
        assert rule[f"{local}AddressPrefixes"] == ["10.1.0.0/24"]
        assert rule["dependsOn"] == ([] if n == 0 else [
            "[resourceId('Microsoft.Network/networkSecurityGroups/securityRules', "
            f"parameters('networkSecurityGroupName'), '{rules[n - 1]['name']}')]"
        ])  # fmt: skip
        assert rule["condition"] is None
    assert "parameters" in json.loads(result.stdout)
    assert set(json.loads(result.stdout)["parameters"]) == {"networkSecurityGroupName"}


@pytest.mark.realdata
def test_nsg_rules_without_local_use_any_and_with_both_families_split(aztags):
    base = ["export", "--profile", "azureml", "--region", "westus", "-f", "azure-nsg", "--rules"]
    anywhere = nsg_rules(aztags(*base).stdout)
    assert len(anywhere) == 9
    assert all(
        r["destinationAddressPrefix" if r["direction"] == "Inbound" else "sourceAddressPrefix"]
        == "*"
        for r in anywhere
    )
    both = nsg_rules(aztags(*base, "--local", "10.1.0.0/24", "--local", "fd00:1::/64").stdout)
    assert len(both) == 18
    first, second = both[:2]
    assert first["name"].endswith("BatchNodeManagement-v4")
    assert first["destinationAddressPrefixes"] == ["10.1.0.0/24"]
    assert second["destinationAddressPrefixes"] == ["fd00:1::/64"]
    assert first["sourceAddressPrefix"] == second["sourceAddressPrefix"] == "BatchNodeManagement"


def test_nsg_rules_write_prefixes_for_a_tag_nsgs_cannot_use(small):
    result = small(
        "export", "--profile", "app", "-f", "azure-nsg", "--rules", "--local", "10.9.0.0/24"
    )
    assert result.exit_code == 0, result.output
    rules = nsg_rules(result.stdout)
    by_name = {r["name"]: r for r in rules}
    assert set(by_name) == {"app-01-Sql", "app-02-Hidden-v4"}
    sql, hidden = by_name["app-01-Sql"], by_name["app-02-Hidden-v4"]
    assert sql["destinationAddressPrefix"] == "Sql" and sql["protocol"] == "Udp"
    assert sql["destinationPortRanges"] == ["53", "8000-8010"]
    # inbound: the Azure prefixes are the source, the workload the destination
    assert hidden["direction"] == "Inbound" and hidden["protocol"] == "*"
    assert hidden["sourceAddressPrefixes"] == ["40.0.0.0/16", "40.1.0.0/16"]
    assert hidden["destinationAddressPrefixes"] == ["10.9.0.0/24"]
    assert hidden["destinationPortRange"] == "*"
    assert "tag Hidden has no NSG in its networkFeatures" in result.stderr
    # Sql (a tag rule) and Hidden have IPv6 prefixes: their IPv6 rules are left out, said once
    assert "No --local address is IPv6, so the IPv6 rules of app-01-Sql, app-02-Hidden" in (
        result.stderr
    )


def test_nsg_priorities_past_4096_are_a_usage_error(small):
    result = small(
        "export", "--profile", "app", "-f", "azure-nsg", "--rules", "--priority-base", "4090"
    )
    assert result.exit_code == 2
    assert "past the NSG maximum 4096; lower --priority-base" in result.stderr
    assert result.stdout == ""


# -- azure-ipgroup ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_ipgroups_are_cut_at_5000(aztags):
    result = aztags("export", "AzureCloud", "-f", "azure-ipgroup")
    doc = json.loads(result.stdout)
    groups = {r["name"]: r for r in doc["resources"]}
    assert list(groups) == ["ipg-AzureCloud", "ipg-AzureCloud-2"]
    assert [len(g["properties"]["ipAddresses"]) for g in groups.values()] == [5000, 1399]
    assert all(":" not in p for g in groups.values() for p in g["properties"]["ipAddresses"])
    assert groups["ipg-AzureCloud"]["tags"]["serviceTags"] == "AzureCloud"
    assert len(doc["outputs"]["ipGroupIds"]["value"]) == 2
    assert "AzureCloud IPv4: 6,399 prefixes split into 2 IP Groups of at most 5,000" in (
        result.stderr
    )
    assert "1,531 IPv6 prefixes left out" in result.stderr


def test_ipgroup_without_ipv4_is_an_error(small):
    result = small("export", "Sql", "-f", "azure-ipgroup", "--ipv6")
    assert result.exit_code == 3 and "IP Groups take IPv4 only" in result.stderr
    assert result.stdout == ""


def test_ipgroup_takes_name_as_given(small):
    doc = json.loads(small("export", "Sql", "-f", "azure-ipgroup", "--name", "fw-sql").stdout)
    assert [r["name"] for r in doc["resources"]] == ["fw-sql"]


# -- aws-prefix-list: the template -----------------------------------------------------------------


@pytest.mark.realdata
def test_prefix_lists_split_by_family_and_cut_at_1000(aztags):
    result = aztags("export", "AzureCloud", "-f", "aws-prefix-list")
    doc = json.loads(result.stdout)
    lists = prefix_lists(result.stdout)
    assert list(lists) == [
        *(f"AzureCloud-ipv4{s}" for s in ("", "-2", "-3", "-4", "-5", "-6", "-7")),
        "AzureCloud-ipv6",
        "AzureCloud-ipv6-2",
    ]
    for name, pl in lists.items():
        fam = 6 if "ipv6" in name else 4
        assert pl["AddressFamily"] == f"IPv{fam}"
        assert all(family_of(e["Cidr"]) == fam for e in pl["Entries"])
        assert pl["MaxEntries"] == len(pl["Entries"]) <= 1000
        assert all(len(e["Description"]) <= 255 for e in pl["Entries"])
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", k) for k in doc["Resources"])
    assert {o["Value"]["Ref"] for o in doc["Outputs"].values()} == set(doc["Resources"])
    assert "AzureCloud IPv4: 6,399 prefixes split into 7 prefix lists" in result.stderr
    assert len(doc["Description"]) <= 1024 and doc["Description"].startswith("aztags")


# -- aws-prefix-list: the delta script, with the real AWS CLI --------------------------------------


class Ec2Error(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class FakeEc2:
    """Managed prefix lists as the EC2 API keeps them, with the API's rules (botocore's model:
    at most 100 entries to add or remove per call; MaxEntries not with entries; the version)."""

    def __init__(self) -> None:
        self.lists: dict[str, dict] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def add_list(self, name: str, family: str, entries: dict[str, str], max_entries: int) -> str:
        pid = f"pl-{len(self.lists) + 1:08x}"
        self.lists[pid] = {
            "name": name,
            "family": family,
            "max": max_entries,
            "version": 1,
            "entries": dict(entries),
            "state": "create-complete",
        }
        return pid

    def load(self, template: str) -> None:
        """The lists a CloudFormation stack of this template would make."""
        for name, pl in prefix_lists(template).items():
            entries = {e["Cidr"]: e["Description"] for e in pl["Entries"]}
            self.add_list(name, pl["AddressFamily"], entries, pl["MaxEntries"])

    def by_name(self) -> dict[str, tuple[str, dict[str, str]]]:
        return {pl["name"]: (pl["family"], pl["entries"]) for pl in self.lists.values()}

    def handle(self, params: dict[str, str]) -> str:
        self.calls.append((params["Action"], params))
        return getattr(self, params["Action"])(params)

    @staticmethod
    def _indexed(params: dict[str, str], prefix: str) -> list[dict[str, str]]:
        found: dict[int, dict[str, str]] = {}
        for key, value in params.items():
            if key.startswith(prefix + "."):
                n, _, name = key[len(prefix) + 1 :].partition(".")
                found.setdefault(int(n), {})[name] = value
        return [found[k] for k in sorted(found)]

    def _xml(self, pid: str) -> str:
        pl = self.lists[pid]
        return (
            f"<prefixListId>{pid}</prefixListId><addressFamily>{pl['family']}</addressFamily>"
            f"<state>{pl['state']}</state><prefixListName>{escape(pl['name'])}</prefixListName>"
            f"<maxEntries>{pl['max']}</maxEntries><version>{pl['version']}</version>"
        )

    def DescribeManagedPrefixLists(self, params: dict[str, str]) -> str:  # noqa: N802
        ids = [v for k, v in params.items() if k.startswith("PrefixListId.")]
        names = [v for k, v in params.items() if k.startswith("Filter.1.Value.")]
        if names:
            assert params["Filter.1.Name"] == "prefix-list-name"
        found = [
            pid
            for pid, pl in self.lists.items()
            if (not ids or pid in ids) and (not names or pl["name"] in names)
        ]
        if ids and not found:
            raise Ec2Error("InvalidPrefixListID.NotFound", f"{ids} not found")
        items = "".join(f"<item>{self._xml(pid)}</item>" for pid in found)
        return f"<prefixListSet>{items}</prefixListSet>"

    def CreateManagedPrefixList(self, params: dict[str, str]) -> str:  # noqa: N802
        entries = self._indexed(params, "Entry")
        if len(entries) > 100:
            raise Ec2Error("InvalidParameterValue", "more than 100 entries")
        pid = self.add_list(
            params["PrefixListName"],
            params["AddressFamily"],
            {e["Cidr"]: e.get("Description", "") for e in entries},
            int(params["MaxEntries"]),
        )
        return f"<prefixList>{self._xml(pid)}</prefixList>"

    def ModifyManagedPrefixList(self, params: dict[str, str]) -> str:  # noqa: N802
        pid = params["PrefixListId"]
        pl = self.lists[pid]
        adds = self._indexed(params, "AddEntry")
        removes = self._indexed(params, "RemoveEntry")
        if "CurrentVersion" in params and int(params["CurrentVersion"]) != pl["version"]:
            raise Ec2Error("PrefixListVersionMismatch", "the version does not match")
        if "MaxEntries" in params:
            if adds or removes:
                raise Ec2Error("InvalidParameterCombination", "entries and size in one call")
            if int(params["MaxEntries"]) < len(pl["entries"]):
                raise Ec2Error("InvalidParameterValue", "max entries below the entry count")
            pl["max"] = int(params["MaxEntries"])
            return f"<prefixList>{self._xml(pid)}</prefixList>"
        if len(adds) > 100 or len(removes) > 100:
            raise Ec2Error("InvalidParameterValue", "more than 100 entries in one call")
        entries = dict(pl["entries"])
        for e in removes:
            if e["Cidr"] not in entries:
                raise Ec2Error("InvalidParameterValue", f"{e['Cidr']} is not in the list")
            del entries[e["Cidr"]]
        for e in adds:
            if e["Cidr"] in entries:
                raise Ec2Error("InvalidParameterValue", f"{e['Cidr']} is in the list already")
            if (":" in e["Cidr"]) != (pl["family"] == "IPv6"):
                raise Ec2Error("InvalidParameterValue", f"{e['Cidr']} is not {pl['family']}")
            entries[e["Cidr"]] = e.get("Description", "")
        if len(entries) > pl["max"]:
            raise Ec2Error("PrefixListMaxEntriesExceeded", f"{len(entries)} > {pl['max']}")
        pl["entries"] = entries
        pl["version"] += 1
        pl["state"] = "modify-complete"
        return f"<prefixList>{self._xml(pid)}</prefixList>"


class _Ec2Handler(BaseHTTPRequestHandler):
    """The EC2 query protocol: a form-encoded POST in, XML out."""

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        params = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        fake: FakeEc2 = self.server.fake  # type: ignore[attr-defined]
        action = params["Action"]
        with fake.lock:
            try:
                inner = fake.handle(params)
                status = 200
                out = (
                    f'<?xml version="1.0" encoding="UTF-8"?><{action}Response xmlns='
                    f'"http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
                    f"{inner}</{action}Response>"
                )
            except Ec2Error as e:
                status = 400
                out = (
                    '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
                    f"<Code>{e.code}</Code><Message>{escape(str(e))}</Message></Error></Errors>"
                    "<RequestID>r</RequestID></Response>"
                )
        data = out.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ec2(tmp_path) -> Iterator[tuple[FakeEc2, dict[str, str]]]:
    """A fake EC2 endpoint on 127.0.0.1 and the environment that sends the AWS CLI to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ec2Handler)
    fake = FakeEc2()
    server.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_EC2": f"http://127.0.0.1:{server.server_port}",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        yield fake, env
    finally:
        server.shutdown()
        server.server_close()


needs_aws = pytest.mark.skipif(
    shutil.which("aws") is None, reason="the AWS CLI is not installed (pip install awscli)"
)


def run_script(script: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    path = tmp_path / "delta.sh"
    path.write_text(script)
    return subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True)


def adds_then_removes(fake: FakeEc2) -> list[str]:
    """The kinds of entry changes, in call order: "add", "remove"."""
    kinds = []
    for action, params in fake.calls:
        if action == "ModifyManagedPrefixList":
            if any(k.startswith("AddEntry.") for k in params):
                kinds.append("add")
            if any(k.startswith("RemoveEntry.") for k in params):
                kinds.append("remove")
    return kinds


@needs_aws
@pytest.mark.slow
def test_delta_script_moves_the_lists_to_the_current_export(small, ec2, tmp_path):
    """Load the lists of the cn:1 export, run the delta with the AWS CLI: the lists are then
    exactly those of the current export (Sql swapped 20.1.0.0/16 for 20.2.0.0/16)."""
    fake, env = ec2
    fake.load(small("export", "Sql", "-f", "aws-prefix-list", "--at", "cn:1").stdout)
    delta = small("export", "Sql", "-f", "aws-prefix-list", "--since", "cn:1")
    assert delta.exit_code == 0 and delta.stdout.startswith("#!/usr/bin/env bash\n# aztags")
    assert "# Sql-ipv4: +1 -1\n" in delta.stdout and "Sql-ipv6" not in delta.stdout
    done = run_script(delta.stdout, tmp_path, env)
    assert done.returncode == 0, done.stderr
    current = FakeEc2()
    current.load(small("export", "Sql", "-f", "aws-prefix-list").stdout)
    assert fake.by_name() == current.by_name()
    assert adds_then_removes(fake) == ["add", "remove"]
    # MaxEntries was raised for the addition, then set back to the entry count: a security
    # group that references the list pays for MaxEntries
    sizes = [
        int(p["MaxEntries"]) for a, p in fake.calls if a.startswith("Modify") and "MaxEntries" in p
    ]
    assert sizes == [3, 2] and all(pl["max"] == len(pl["entries"]) for pl in fake.lists.values())


@needs_aws
@pytest.mark.slow
def test_delta_script_stops_when_a_list_is_missing(small, ec2, tmp_path):
    fake, env = ec2
    delta = small("export", "Sql", "-f", "aws-prefix-list", "--since", "cn:1")
    done = run_script(delta.stdout, tmp_path, env)
    assert done.returncode != 0
    assert "prefix list Sql-ipv4 not found" in done.stderr
    assert not any(a == "ModifyManagedPrefixList" for a, _ in fake.calls)


def apply_script(script: str, fake: FakeEc2) -> None:
    """Run the delta script's steps (not its shell functions, which the test above runs with
    the AWS CLI) on ``fake``: fast, for big deltas."""
    ids: dict[str, str] = {}
    names = {pl["name"]: pid for pid, pl in fake.lists.items()}
    for line in script.splitlines():
        if m := re.fullmatch(r"existing (pl\d+) '([^']+)'", line):
            ids[m.group(1)] = names[m.group(2)]
        elif m := re.fullmatch(r"created (pl\d+) '([^']+)' (IPv[46]) (\d+)", line):
            if m.group(2) not in names:
                fake.handle(
                    {
                        "Action": "CreateManagedPrefixList",
                        "PrefixListName": m.group(2),
                        "AddressFamily": m.group(3),
                        "MaxEntries": m.group(4),
                    }
                )
                names[m.group(2)] = list(fake.lists)[-1]
            ids[m.group(1)] = names[m.group(2)]
        elif m := re.fullmatch(r'resize "\$(pl\d+)" (\d+)', line):
            if fake.lists[ids[m.group(1)]]["max"] != int(m.group(2)):
                fake.handle(
                    {
                        "Action": "ModifyManagedPrefixList",
                        "PrefixListId": ids[m.group(1)],
                        "MaxEntries": m.group(2),
                    }
                )
        elif m := re.fullmatch(r"modify \"\$(pl\d+)\" --(add|remove)-entries '(.*)'", line):
            pid = ids[m.group(1)]
            params = {
                "Action": "ModifyManagedPrefixList",
                "PrefixListId": pid,
                "CurrentVersion": str(fake.lists[pid]["version"]),
            }
            key = "AddEntry" if m.group(2) == "add" else "RemoveEntry"
            for n, entry in enumerate(json.loads(m.group(3)), 1):
                params.update({f"{key}.{n}.{k}": v for k, v in entry.items()})
            fake.handle(params)
        elif re.match(r"(existing|created|modify|resize) ", line):
            raise AssertionError(f"a step this test does not know: {line}")


@pytest.mark.realdata
def test_delta_moves_prefixes_between_lists_when_the_cut_shifts(aztags):
    """AzureCloud grows from 6,004 to 6,399 IPv4 prefixes between these files: every list's cut
    moves, so prefixes move from one list to the next, and a new list appears."""
    fake = FakeEc2()
    fake.load(aztags("export", "AzureCloud", "-f", "aws-prefix-list", "--at", "2023-03-06").stdout)
    assert len(fake.lists) == 9  # 7 IPv4 (the last one holds 4) and 2 IPv6
    delta = aztags("export", "AzureCloud", "-f", "aws-prefix-list", "--since", "2023-03-06")
    apply_script(delta.stdout, fake)  # the fake refuses > 100 entries per call
    current = FakeEc2()
    current.load(aztags("export", "AzureCloud", "-f", "aws-prefix-list").stdout)
    assert fake.by_name() == current.by_name()
    assert adds_then_removes(fake) == sorted(adds_then_removes(fake))


def test_delta_creates_a_list_for_a_new_family_and_empties_an_old_one(small, tmp_path):
    """From a state file: the device was given Web (IPv4 only); now the object is Sql, IPv6."""
    state = tmp_path / "aws.state"
    args = ["-f", "aws-prefix-list", "--state", str(state), "--name", "Sql"]
    fake = FakeEc2()
    fake.load(small("export", "Web", *args, "--at", "cn:1").stdout)
    delta = small("export", "Sql", *args, "--ipv6")
    assert delta.exit_code == 0, delta.output
    assert "delta from state file" in delta.stdout
    assert "prefix list Sql-ipv4 is now empty" in delta.stdout
    apply_script(delta.stdout, fake)
    assert fake.by_name() == {
        "Sql-ipv4": ("IPv4", {}),
        "Sql-ipv6": ("IPv6", {"2001:db8::/48": "Sql"}),
    }


def test_delta_with_nothing_to_do_says_so(small):
    first = small("export", "Web", "-f", "aws-prefix-list", "--since", "cn:1")
    assert first.exit_code == 0
    assert "nothing to change" in first.stdout and "modify " not in first.stdout.split("}\n")[-1]


# -- windows-firewall ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_windows_rules_hold_at_most_1000_addresses(aztags):
    result = aztags("export", "AzureCloud", "-f", "windows-firewall")
    rules = windows_rules(result.stdout)
    assert [r["Name"] for r in rules] == [f"AzureCloud-{n}" for n in range(1, 9)]
    assert all(len(r["RemoteAddress"]) <= 1000 for r in rules)
    assert {r["Group"] for r in rules} == {"aztags AzureCloud"}
    assert rules[0]["DisplayName"] == "AzureCloud (1/8)"
    assert all(r["LocalAddress"] == ["Any"] for r in rules)
    # the clean-up keeps exactly these rules of the group
    keep = re.search(
        r"^Remove-AztagsStaleRules -Group (.*?) -Keep @\(\n(.*?)\n\)$", result.stdout, re.M | re.S
    )
    assert keep and ps_strings(keep.group(1)) == ["aztags AzureCloud"]
    assert ps_strings(keep.group(2)) == [r["Name"] for r in rules]
    assert "7,930 prefixes split into 8 rules of at most 1,000" in result.stderr


def test_windows_script_asks_for_the_traffic_and_quotes_names(small):
    result = small(
        "export",
        "Sql",
        "-f",
        "windows-firewall",
        "--name",
        "O'Brien’s list",
        "--local",
        "10.0.0.0/8",
    )
    text = result.stdout
    assert text.startswith("# aztags")
    param = re.search(r"^param\((.*?)\n\)$", text, re.M | re.S)
    assert param and param.group(1).count("Mandatory = $true") == 3  # Direction, Protocol, Port
    # every line has balanced single quotes ('' inside a string counts twice)
    assert all(line.count("'") % 2 == 0 for line in text.splitlines() if not line.startswith("#"))
    (rule,) = windows_rules(text)
    assert rule["Name"] == "O_Brien_s_list-1"
    assert rule["DisplayName"] == "O'Brien_s list"  # the typographic quote is no quote here
    assert rule["LocalAddress"] == ["10.0.0.0/8"]
    assert rule["RemoteAddress"] == ["20.0.0.0/16", "20.2.0.0/16", "2001:db8::/48"]


# -- terraform -------------------------------------------------------------------------------------

needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None, reason="terraform is not installed"
)


@needs_terraform
@pytest.mark.realdata
def test_terraform_reads_the_tfvars_back(aztags, tmp_path):
    result = aztags("export", *NAMES, "-f", "terraform", "--name", "azure")
    variables = parse_tfvars(result.stdout)
    assert list(variables) == ["azure_ipv4", "azure_ipv6"]
    (tmp_path / "azure.auto.tfvars").write_text(result.stdout)
    (tmp_path / "main.tf").write_text(
        "".join(f'variable "{v}" {{ type = list(string) }}\n' for v in variables)
    )
    read = subprocess.run(
        ["terraform", "console"],
        input="jsonencode({ipv4 = var.azure_ipv4, ipv6 = var.azure_ipv6})\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(tmp_path / "none.tfrc"),
            "TF_IN_AUTOMATION": "1",
        },
    )
    assert read.returncode == 0, read.stderr
    values = json.loads(json.loads(read.stdout))  # console prints the JSON as an HCL string
    assert collapsed(values["ipv4"]) == {**expected_space(NAMES, family=4), 6: []}
    assert collapsed(values["ipv6"]) == {4: [], **{6: expected_space(NAMES, family=6)[6]}}


def test_terraform_names_are_identifiers_and_both_families_are_always_there(small):
    result = small("export", "Sql", "Web", "-f", "terraform", "--ipv4", "--name", "9.Lives-West")
    variables = parse_tfvars(result.stdout)
    assert variables == {
        "az_9_lives_west_ipv4": ["20.0.0.0/16", "20.2.0.0/16", "30.0.0.0/8"],
        "az_9_lives_west_ipv6": [],
    }
    as_json = json.loads(small("export", "Sql", "Web", "-f", "terraform-json", "--ipv4").stdout)
    assert as_json == {
        "aztags_sql_web_ipv4": ["20.0.0.0/16", "20.2.0.0/16", "30.0.0.0/8"],
        "aztags_sql_web_ipv6": [],
    }


# -- every format here -----------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    """Two Public files (Sql gains 20.2.0.0/16 and loses 20.1.0.0/16), a tag without NSG in its
    networkFeatures, and a profile using it."""
    db = tmp_path / "small.db"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "app.toml").write_text(
        '[[rule]]\ndirection = "outbound"\nports = "53,8000-8010"\nprotocol = "udp"\n'
        'tag = "Sql"\n\n'
        '[[rule]]\ndirection = "inbound"\nports = "*"\nprotocol = "any"\ntag = "Hidden"\n'
    )
    aztags = run_in(db, tmp_path, AZTAGS_PROFILES_DIR=str(profiles))
    for cn, sql in (
        (1, ["20.0.0.0/16", "20.1.0.0/16"]),
        (2, ["20.0.0.0/16", "20.2.0.0/16"]),
    ):
        values = [
            tag_json("Sql", [*sql, "2001:db8::/48"]),
            tag_json("Web", ["30.0.0.0/8"]),
            tag_json("Hidden", ["40.0.0.0/16", "40.1.0.0/16", "2001:db8:4::/48"], features=None),
        ]
        path = tmp_path / f"ServiceTags_Public_202501{cn:02d}.json"
        path.write_bytes(snapshot_bytes(cn, values))
        assert aztags("import", str(path)).exit_code == 0
    return aztags


FULL_REPLACE = ["azure-nsg", "azure-ipgroup", "windows-firewall", "terraform", "terraform-json"]


@pytest.mark.parametrize("fmt", FULL_REPLACE)
def test_since_writes_the_full_list_and_says_so(small, fmt):
    result = small("export", "Sql", "-f", fmt, "--since", "cn:1")
    assert result.exit_code == 0
    assert f"{fmt} has no incremental commands" in result.stderr
    parse = PARSERS.get(fmt, parse_ipgroup)
    assert set(parse(result.stdout)) >= {"20.0.0.0/16", "20.2.0.0/16"}


@pytest.mark.parametrize("fmt", [*FULL_REPLACE, "aws-prefix-list"])
def test_an_empty_list_is_an_error(small, fmt):
    result = small("export", "Web", "-f", fmt, "--ipv6")
    assert result.exit_code == 3 and "no IPv6 prefixes" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [*FULL_REPLACE, "aws-prefix-list"])
def test_output_is_deterministic(small, fmt):
    first = small("export", "Sql", "Web", "-f", fmt)
    assert first.exit_code == 0 and small("export", "Sql", "Web", "-f", fmt).stdout == first.stdout
