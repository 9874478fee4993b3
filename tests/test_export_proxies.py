"""Exports for proxies and web servers (issue 11): nginx (geo block), HAProxy and Squid ACL files,
Squid dstdomain from a profile's host names. Each is parsed back and must cover exactly the
query's address space (from the raw published JSON), and each is checked by the real program:
``nginx -t``, ``haproxy -c``, ``squid -k parse``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import (
    WEEKLY_2023,
    cli_env,
    collapsed,
    expected_space,
    raw_tags,
    simple_snapshot,
    union_of,
)

DAY = WEEKLY_2023[-1]
NAMES = ["AzureCloud.westeurope", "Sql.WestEurope", "Storage"]  # both families, overlapping


def entries(text: str) -> list[str]:
    """The lines of an ACL file that are not comments or blank (HAProxy's and Squid's rule)."""
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def parse_nginx(text: str) -> dict[str, list[str]]:
    """{variable: prefixes} of the geo blocks; every entry maps to 1, the default to 0."""
    blocks = re.findall(r"^geo \$(\w+) \{\n(.*?)^\}$", text, re.M | re.S)
    out = {}
    for name, body in blocks:
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        assert lines[0] == "default 0;"
        assert all(re.fullmatch(r"\S+ 1;", line) for line in lines[1:]), lines[:5]
        out[name] = [line.split()[0] for line in lines[1:]]
    return out


PARSERS = {
    "nginx": lambda text: [p for ps in parse_nginx(text).values() for p in ps],
    "haproxy": entries,
    "squid": entries,
}


# -- fidelity on real files ------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", sorted(PARSERS))
@pytest.mark.parametrize("aggregate", [False, True])
def test_proxy_formats_cover_exactly_the_query(aztags, fmt, aggregate):
    result = aztags("export", *NAMES, "-f", fmt, *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    assert collapsed(PARSERS[fmt](result.stdout)) == expected_space(NAMES)
    assert result.stdout.startswith("# aztags")  # the header, as comments


@pytest.mark.realdata
def test_one_family(aztags):
    result = aztags("export", "Storage.WestEurope", "-f", "haproxy", "--ipv6")
    assert collapsed(entries(result.stdout)) == expected_space(["Storage.WestEurope"], family=6)


@pytest.mark.realdata
def test_squid_leaves_out_prefixes_inside_others_and_says_so(aztags):
    result = aztags("export", *NAMES, "-f", "squid")
    listed = entries(result.stdout)
    union = union_of(raw_tags("Public", DAY), NAMES)
    dropped = len(union) - len(listed)
    assert dropped > 0 and f"# {dropped} prefixes inside other prefixes" in result.stdout
    # nothing left is inside another entry (Squid's warning), and nothing adjacent was merged
    assert set(listed) <= union
    nets = collapsed(listed)
    assert nets == expected_space(NAMES)


# -- the real tools --------------------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)"
)
needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy is not installed (apt-get install haproxy)"
)
needs_squid = pytest.mark.skipif(
    shutil.which("squid") is None, reason="squid is not installed (apt-get install squid)"
)


def nginx_check(tmp_path: Path, included: str, usage: str) -> subprocess.CompletedProcess:
    (tmp_path / "azure.conf").write_text(included)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/azure.conf;\n"
        f"    server {{\n        listen 127.0.0.1:18080;\n"
        f"        location / {{\n            {usage}\n            return 200;\n        }}\n"
        "    }\n}\n"
    )
    return subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
    )


@needs_nginx
@pytest.mark.realdata
def test_nginx_accepts_the_geo_block(aztags, tmp_path):
    result = aztags("export", *NAMES, "-f", "nginx", "--name", "azure")
    assert result.exit_code == 0
    # the usage line the file's comment suggests, as it suggests it
    usage = re.search(r"^#\s+(if \(\$azure = 0\) \{ return 403; \})$", result.stdout, re.M)
    assert usage is not None, result.stdout[:600]
    check = nginx_check(tmp_path, result.stdout, usage.group(1))
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr


@needs_nginx
def test_nginx_check_fails_on_a_broken_file(tmp_path):
    """The check above can fail: nginx rejects a geo entry without a value."""
    check = nginx_check(tmp_path, "geo $azure {\n    default 0;\n    10.0.0.0/8;\n}\n", "")
    assert check.returncode != 0


def haproxy_check(tmp_path: Path, acl_file: str) -> subprocess.CompletedProcess:
    (tmp_path / "azure.lst").write_text(acl_file)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
        "    timeout connect 1s\n"
        "frontend f\n    bind 127.0.0.1:18081\n"
        f"    acl azure src -f {tmp_path}/azure.lst\n"
        "    http-request deny if !azure\n    default_backend b\n"
        "backend b\n    server s 127.0.0.1:1\n"
    )
    return subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)


@needs_haproxy
@pytest.mark.realdata
def test_haproxy_accepts_the_acl_file(aztags, tmp_path):
    result = aztags("export", *NAMES, "-f", "haproxy")
    check = haproxy_check(tmp_path, result.stdout)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Configuration file is valid" in check.stdout + check.stderr


@needs_haproxy
def test_haproxy_check_fails_on_a_broken_file(tmp_path):
    assert haproxy_check(tmp_path, "10.0.0.0/33\n").returncode != 0


def squid_check(tmp_path: Path, dst: str, domains: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "azure.txt").write_text(dst)
    lines = [f'acl azure dst "{tmp_path}/azure.txt"', "http_access allow azure"]
    if domains is not None:
        (tmp_path / "azure.domains").write_text(domains)
        lines += [f'acl azure_hosts dstdomain "{tmp_path}/azure.domains"']
        lines += ["http_access allow azure_hosts"]
    lines += [
        "http_access deny all",
        "http_port 127.0.0.1:13128",
        f"pid_filename {tmp_path}/squid.pid",
        f"cache_log {tmp_path}/cache.log",
        "access_log none",
    ]
    conf = tmp_path / "squid.conf"
    conf.write_text("\n".join(lines) + "\n")
    return subprocess.run(["squid", "-k", "parse", "-f", str(conf)], capture_output=True, text=True)


@needs_squid
@pytest.mark.realdata
def test_squid_accepts_the_acl_files_without_warnings(aztags, tmp_path):
    dst = aztags("export", *NAMES, "-f", "squid")
    hosts = aztags("export", "--profile", "azureml", "--region", "westus", "-f", "squid-dstdomain")
    assert dst.exit_code == 0 and hosts.exit_code == 0, hosts.output
    check = squid_check(tmp_path, dst.stdout, hosts.stdout)
    log = check.stdout + check.stderr
    assert check.returncode == 0, log[-2000:]
    # overlapping prefixes or domains are warnings (or, for domains, fatal) in Squid
    assert "WARNING" not in log and "ERROR" not in log, log[-2000:]


@needs_squid
def test_squid_check_fails_on_overlapping_domains(tmp_path):
    """What the dstdomain export avoids: Squid 5 stops on a name its .domain entry covers."""
    check = squid_check(tmp_path, "10.0.0.0/8\n", ".anaconda.com\nanaconda.com\n")
    assert check.returncode != 0


# -- Squid dstdomain from a profile ----------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    """A store with two Public files and a profile with host names of every shape."""
    db = tmp_path / "small.db"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "web.toml").write_text(
        '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Sql"\n'
        + "".join(
            f'[[fqdn]]\nhost = "{h}"\n'
            for h in (
                "example.com",
                "*.example.com",  # with its apex listed too: no warning for it
                "*.only-subdomains.org",
                "*pattern.net",
                "a.b.pattern.net",  # covered by .pattern.net: left out
                "Mixed.Case.IO",
            )
        )
    )
    env = {**cli_env(db, tmp_path), "AZTAGS_PROFILES_DIR": str(profiles)}

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    for cn, extra in ((1, []), (2, ["20.2.0.0/16"])):
        path = tmp_path / f"ServiceTags_Public_202501{cn:02d}.json"
        tags = {"Sql": ["20.0.0.0/16", "2001:db8::/48", *extra], "Web": ["30.0.0.0/8"]}
        path.write_bytes(simple_snapshot(cn, tags))
        assert invoke("import", str(path)).exit_code == 0
    return invoke


def test_dstdomain_turns_patterns_into_domains_without_overlaps(small):
    result = small("export", "--profile", "web", "-f", "squid-dstdomain")
    assert result.exit_code == 0, result.output
    assert entries(result.stdout) == [
        ".example.com",
        ".only-subdomains.org",
        ".pattern.net",
        "mixed.case.io",
    ]
    # *.only-subdomains.org also lets only-subdomains.org through now: said once
    assert "*.only-subdomains.org" in result.stderr and "example.com," not in result.stderr


def test_dstdomain_needs_a_profile(small):
    result = small("export", "Sql", "-f", "squid-dstdomain")
    assert result.exit_code == 2 and "lists a profile's host names" in result.stderr


@pytest.mark.parametrize("fmt", ["nginx", "haproxy", "squid"])
def test_an_empty_list_is_an_error(small, fmt):
    """An empty ACL matches nothing without a word; a geo block without entries denies all."""
    result = small("export", "Web", "-f", fmt, "--ipv6")
    assert result.exit_code == 3 and "no IPv6 prefixes" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("fmt", ["nginx", "haproxy", "squid"])
def test_since_writes_the_full_list_and_says_so(small, fmt):
    result = small("export", "Sql", "-f", fmt, "--since", "cn:1")
    assert result.exit_code == 0
    assert f"{fmt} has no incremental commands" in result.stderr
    assert collapsed(PARSERS[fmt](result.stdout)) == collapsed(
        ["20.0.0.0/16", "20.2.0.0/16", "2001:db8::/48"]
    )


def test_nginx_variables_are_valid_and_unique(small):
    result = small("export", "Sql", "-f", "nginx", "--name", "9 Lives.West-Europe")
    (name,) = parse_nginx(result.stdout)
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name.startswith("az_9_lives")


def test_output_is_deterministic(small):
    for fmt in ("nginx", "haproxy", "squid"):
        first = small("export", "Sql", "Web", "-f", fmt).stdout
        assert small("export", "Sql", "Web", "-f", fmt).stdout == first
