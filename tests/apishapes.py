"""The Discovery API's shapes, built from a Service Tags file (a real one or a synthetic one).

    answer = api_answer(real_json("Public", "20250113"), change_number="63")
    pages = api_pages(answer, 3, "http://127.0.0.1:PORT/subscriptions/...")
    az = az_output(answer)                 # what `az network list-service-tags` prints
    ps = powershell_output(answer)         # `Get-AzNetworkServiceTag | ConvertTo-Json -Depth 10`

Shapes as documented: Azure/azure-rest-api-specs, specification/network/resource-manager/
Microsoft.Network/stable/2024-07-01/serviceTags.json and examples/ServiceTagsList.json (string
changeNumbers, no regionId nor platform, a state, a nextLink), and Azure/azure-powershell's
PSNetworkServiceTag*.cs models (PascalCase, string ChangeNumber, no State nor NetworkFeatures).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-token-c2VjcmV0.c2lnbmF0dXJl"
PATH = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Network/locations/westus/serviceTags"


def api_answer(doc: dict, change_number: str = "63", *, features: bool = True) -> dict:
    """A file's content as the Discovery API answers it (one page, no nextLink)."""
    cloud = doc["cloud"]
    values = []
    for tag in doc["values"]:
        p = tag["properties"]
        props = {
            "changeNumber": str(p["changeNumber"]),
            "region": p["region"],
            "state": "GA",
            "systemService": p["systemService"],
            "addressPrefixes": list(p["addressPrefixes"]),
        }
        if features:
            props["networkFeatures"] = p["networkFeatures"]
        values.append(
            {
                "name": tag["name"],
                "id": tag["id"],
                "serviceTagChangeNumber": change_number,
                "properties": props,
            }
        )
    return {
        "name": cloud.lower(),
        "id": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Network/serviceTags/{cloud}",
        "type": "Microsoft.Network/serviceTags",
        "changeNumber": change_number,
        "cloud": cloud,
        "values": values,
    }


def api_pages(answer: dict, count: int, next_base: str) -> list[dict]:
    """The answer cut into ``count`` pages, each but the last with a nextLink to
    ``{next_base}?...&$skipToken=N`` (the form of the specification's example)."""
    values = answer["values"]
    size = -(-len(values) // count)
    pages = []
    for i in range(count):
        page = {k: v for k, v in answer.items() if k != "values"}
        page["values"] = values[i * size : (i + 1) * size]
        if i < count - 1:
            page["nextLink"] = (
                f"{next_base}?api-version=2024-07-01&changenumber={answer['changeNumber']}"
                f"&$skipToken={i + 1}"
            )
        pages.append(page)
    return pages


def az_output(answer: dict) -> bytes:
    """As the az CLI prints it: the answer's JSON, keys sorted, indented, nextLink null."""
    return (json.dumps({**answer, "nextLink": None}, indent=2, sort_keys=True) + "\n").encode()


def powershell_output(answer: dict) -> bytes:
    """As ``Get-AzNetworkServiceTag | ConvertTo-Json -Depth 10`` prints it: PSNetworkServiceTag's
    properties in their declared order, PascalCase; no State nor NetworkFeatures (the model has
    neither)."""
    doc = {
        "Name": answer["name"],
        "Id": answer["id"],
        "Type": answer["type"],
        "Cloud": answer["cloud"],
        "ChangeNumber": answer["changeNumber"],
        "Values": [
            {
                "Name": v["name"],
                "Id": v["id"],
                "Properties": {
                    "Region": v["properties"]["region"],
                    "SystemService": v["properties"]["systemService"],
                    "ChangeNumber": v["properties"]["changeNumber"],
                    "AddressPrefixes": v["properties"]["addressPrefixes"],
                },
            }
            for v in answer["values"]
        ],
    }
    return json.dumps(doc, indent=4).encode("utf-8-sig")  # PowerShell 7's Out-File utf8BOM


def changed(answer: dict, tag: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict:
    """A copy of ``answer`` with prefixes added to and removed from one tag."""
    out = copy.deepcopy(answer)
    for value in out["values"]:
        if value["name"] == tag:
            prefixes = [p for p in value["properties"]["addressPrefixes"] if p not in remove]
            value["properties"]["addressPrefixes"] = prefixes + list(add)
    return out
