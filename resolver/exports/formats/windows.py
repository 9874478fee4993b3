"""Windows Defender Firewall: a PowerShell script of NetSecurity rules.

The script is idempotent: run again after a refresh, it updates each rule in place with
``Set-NetFirewallRule`` (one call replaces the rule's address filter), creates the rules that are
new with ``New-NetFirewallRule``, and then removes the rules of the same list that are no longer
needed (a list that shrank from three chunks to two). Every rule of a list is in one ``-Group``
(``aztags <name>``), which is how the clean-up finds them and how a user sees them together.

``-RemoteAddress`` takes IPv4 and IPv6 together. A rule holds at most 1,000 addresses: the
practical limit reported for Windows 10 (Windows 11 is said to take 10,000) [community
reports], so larger lists are split into several rules, ``<name>-1``, ``<name>-2``...

A list says nothing about traffic, so the script asks: ``-Direction``, ``-Protocol`` and
``-Port`` are mandatory parameters (``-Port Any`` and ``-Protocol Any`` have to be said out
loud), ``-Action`` defaults to Allow. The port is the local port of inbound rules and the remote
port of outbound ones. The local side is ``--local`` (``-LocalAddress``), Any by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from resolver.exports.model import ExportInput, Format, Output, chunks, object_names

PER_RULE = 1000

PREAMBLE = """\
param(
    [Parameter(Mandatory = $true)][ValidateSet('Inbound', 'Outbound')][string]$Direction,
    [Parameter(Mandatory = $true)][ValidateSet('TCP', 'UDP', 'Any')][string]$Protocol,
    [Parameter(Mandatory = $true)][string[]]$Port,
    [ValidateSet('Allow', 'Block')][string]$Action = 'Allow'
)
$ErrorActionPreference = 'Stop'
if ($Protocol -eq 'Any' -and @($Port | Where-Object { $_ -ne 'Any' }).Count -gt 0) {
    throw 'With -Protocol Any the only port is -Port Any.'
}

function Set-AztagsRule {
    param([string]$Name, [string]$DisplayName, [string]$Group, [string]$Description,
          [string[]]$LocalAddress, [string[]]$RemoteAddress)
    $filter = @{
        Direction = $Direction; Action = $Action; Protocol = $Protocol
        LocalAddress = $LocalAddress; RemoteAddress = $RemoteAddress; Description = $Description
    }
    if ($Protocol -ne 'Any') {
        if ($Direction -eq 'Inbound') { $filter.LocalPort = $Port; $filter.RemotePort = 'Any' }
        else { $filter.RemotePort = $Port; $filter.LocalPort = 'Any' }
    }
    if (Get-NetFirewallRule -Name $Name -ErrorAction SilentlyContinue) {
        Set-NetFirewallRule -Name $Name -NewDisplayName $DisplayName @filter
    } else {
        New-NetFirewallRule -Name $Name -DisplayName $DisplayName -Group $Group @filter | Out-Null
    }
}

function Remove-AztagsStaleRules {
    param([string]$Group, [string[]]$Keep)
    Get-NetFirewallRule -Group $Group -ErrorAction SilentlyContinue |
        Where-Object { $Keep -notcontains $_.Name } |
        Remove-NetFirewallRule
}
"""


def _ps(text: str) -> str:
    """A PowerShell single-quoted string (printable ASCII only: PowerShell also takes the
    typographic quotes as quotes)."""
    clean = "".join(c if " " <= c <= "~" else "_" for c in text)
    return "'" + clean.replace("'", "''") + "'"


def _array(items: Sequence[str], indent: str = "    ") -> str:
    return "@(\n" + ",\n".join(f"{indent}{_ps(i)}" for i in items) + "\n)"


def powershell(inp: ExportInput) -> Output:
    names = object_names([o.name for o in inp.objects], allowed="A-Za-z0-9_.-", max_length=60)
    local = list(inp.options.local) or ["Any"]
    out = [inp.header.comment("#")]
    out.append(
        "# Windows Defender Firewall rules. In an elevated PowerShell, for example:\n"
        "#   .\\azure.ps1 -Direction Outbound -Protocol TCP -Port 443\n"
        "# Running it again updates the rules in place and removes the ones no longer needed.\n"
    )
    out.append(PREAMBLE)
    warnings = []
    h = inp.header
    for name, obj in zip(names, inp.objects, strict=True):
        group = f"aztags {name}"
        pieces = chunks(obj.prefixes, PER_RULE)
        if len(pieces) > 1:
            warnings.append(
                f"{obj.name}: {len(obj.prefixes):,} prefixes split into {len(pieces)} rules of "
                f"at most {PER_RULE:,} addresses (Windows firewall rules take about 1,000)."
            )
        rule_names = [f"{name}-{n}" for n in range(1, len(pieces) + 1)]
        tags = ", ".join(obj.tags) if len(obj.tags) <= 4 else f"{', '.join(obj.tags[:4])}, ..."
        description = f"aztags: {tags}; changeNumber {h.change_number}"
        out.append(f"\n# {name}: {len(obj.prefixes)} prefixes in {len(pieces)} rule(s)\n")
        for n, (rule, piece) in enumerate(zip(rule_names, pieces, strict=True), 1):
            display = f"{obj.name} ({n}/{len(pieces)})" if len(pieces) > 1 else obj.name
            out.append(
                f"Set-AztagsRule -Name {_ps(rule)} -DisplayName {_ps(display)} "
                f"-Group {_ps(group)} -Description {_ps(description)} "
                f"-LocalAddress {_array(local)} -RemoteAddress {_array(piece)}\n"
            )
        out.append(f"Remove-AztagsStaleRules -Group {_ps(group)} -Keep {_array(rule_names)}\n")
    return Output("".join(out), tuple(warnings))


FORMATS = (
    Format(
        "windows-firewall",
        "PowerShell: New/Set-NetFirewallRule with -RemoteAddress lists, idempotent",
        powershell,
    ),
)
