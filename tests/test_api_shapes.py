"""The Discovery API's answer, az's output and PowerShell's JSON: read by shape, validated like
the file, stored on the cloud's API timeline ("Public@api")."""

from __future__ import annotations

import json

import pytest

from resolver.errors import SnapshotError
from resolver.parse import API_ANSWER, FILE_SHAPE, POWERSHELL, detect_shape, parse_snapshot
from resolver.timelines import split_key, timeline_key
from tests.apishapes import api_answer, az_output, powershell_output
from tests.helpers import load_real_tags, real_json, tag_json

SMALL = {
    "changeNumber": 300,
    "cloud": "Public",
    "values": [
        tag_json("AzureCloud", ["10.0.0.0/8", "2603:1000::/40"]),
        tag_json("Storage.WestUS", ["10.1.0.0/16"], region="westus", region_id=37),
    ],
}


def refused(data: bytes | dict) -> str:
    body = json.dumps(data).encode() if isinstance(data, dict) else data
    with pytest.raises(SnapshotError) as err:
        parse_snapshot(body, "answer.json")
    return str(err.value)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("cloud", "day"),
    [("Public", "20250113"), ("AzureGovernment", "20241118"), ("China", "20241118")],
)
def test_real_file_as_api_az_and_powershell_holds_the_same_prefixes(cloud, day):
    answer = api_answer(real_json(cloud, day), change_number="1042")
    expected = {t.name: t.prefixes for t in load_real_tags(cloud, day)}
    for body in (json.dumps(answer).encode(), az_output(answer), powershell_output(answer)):
        snap = parse_snapshot(body, "answer.json")
        assert snap.cloud == f"{cloud}@api" and snap.change_number == 1042
        assert {t.name: t.prefixes for t in snap.tags} == expected
        assert {t.region_id for t in snap.tags} == {0}  # the API has no regionId
        assert {t.platform for t in snap.tags} == {""}  # nor a platform


def test_shapes_are_told_apart_by_their_keys():
    answer = api_answer(SMALL)
    assert detect_shape(SMALL) == FILE_SHAPE
    assert detect_shape(answer) == API_ANSWER
    assert detect_shape(json.loads(az_output(answer))) == API_ANSWER
    assert detect_shape(json.loads(powershell_output(answer).decode("utf-8-sig"))) == POWERSHELL
    # a file with a string changeNumber and none of the API's own keys is still a (bad) file
    assert "changeNumber: expected an integer" in refused({**SMALL, "changeNumber": "300"})


def test_api_answer_keeps_network_features_when_given_and_null_when_absent():
    with_features = parse_snapshot(json.dumps(api_answer(SMALL)).encode(), "a.json")
    assert with_features.tags[0].network_features == frozenset({"API", "NSG"})
    ps = parse_snapshot(powershell_output(api_answer(SMALL)), "ps.json")
    assert [t.network_features for t in ps.tags] == [None, None]
    assert [t.change_number for t in ps.tags] == [1, 1]


def test_non_digit_change_numbers_are_refused_with_a_sentence():
    answer = api_answer(SMALL, change_number="6x3")
    answer["values"][1]["properties"]["changeNumber"] = "-4"
    text = refused(answer)
    assert "read as a Discovery API answer" in text
    assert (
        'changeNumber: "6x3" is not a changeNumber: the Discovery API writes it as a string' in text
    )
    assert "tag 'Storage.WestUS': changeNumber: \"-4\" is not a changeNumber" in text
    huge = api_answer(SMALL, change_number="9" * 25)
    assert "too large" in refused(huge)
    arabic = api_answer(SMALL, change_number="٦٣")  # digits, but not ASCII ones
    assert "is not a changeNumber" in refused(arabic)


def test_api_answer_is_validated_like_the_file():
    answer = api_answer(SMALL)
    answer["values"][1]["properties"]["addressPrefixes"] = ["10.1.0.1/16", "not-an-ip/8"]
    answer["values"][0]["properties"]["state"] = 7
    answer["cloud"] = "Mars"
    text = refused(answer)
    assert "host bits are set" in text and "is not an IPv4 address" in text
    assert "'Mars' is not an Azure cloud" in text
    assert "state: expected a string" in text
    assert "values: the file lists no tags" in refused({**api_answer(SMALL), "values": []})
    assert "unexpected top-level field(s): 'extra'" in refused({**api_answer(SMALL), "extra": 1})
    assert "type: expected 'Microsoft.Network/serviceTags'" in refused(
        {**api_answer(SMALL), "type": "Microsoft.Network/virtualNetworks"}
    )


def test_one_page_of_a_longer_answer_is_refused():
    text = refused({**api_answer(SMALL), "nextLink": "https://management.azure.com/x?$skipToken=1"})
    assert "nextLink: the answer goes on at another page" in text
    assert "aztags fetch --api" in text


def test_powershell_output_with_bad_values_names_the_shape():
    doc = json.loads(powershell_output(api_answer(SMALL)).decode("utf-8-sig"))
    doc["Values"][0]["Properties"]["AddressPrefixes"] = None
    doc["ChangeNumber"] = "abc"
    text = refused(doc)
    assert "read as Get-AzNetworkServiceTag | ConvertTo-Json output" in text
    assert "addressPrefixes: expected a list" in text and '"abc" is not a changeNumber' in text
    doc = json.loads(powershell_output(api_answer(SMALL)).decode("utf-8-sig"))
    doc["values"] = []  # both spellings: the file's key wins the shape, and the rest is extra
    assert "unexpected top-level field" in refused(doc)


def test_windows_powershell_utf16_output_gets_a_hint():
    body = powershell_output(api_answer(SMALL)).decode("utf-8-sig")
    text = refused("\ufeff".encode("utf-16-le") + body.encode("utf-16-le"))
    assert "UTF-16 text" in text and "Out-File -Encoding utf8" in text


def test_timeline_keys():
    from resolver.clouds import get_cloud

    china = get_cloud("china")
    assert timeline_key(china) == "China" and timeline_key(china, "api") == "China@api"
    assert split_key("China@api") == (china, "api") and split_key("China") == (china, "file")


def test_a_paged_answer_whose_page_has_no_values_is_refused_with_a_sentence():
    from resolver.errors import FetchError
    from resolver.sources.api import _join

    first = {"changeNumber": "63", "cloud": "Public", "values": None, "nextLink": "x"}
    second = {"changeNumber": "63", "cloud": "Public", "values": []}
    with pytest.raises(FetchError, match="page 1 of the answer has no list of values"):
        _join([first, second], "the Discovery API")
