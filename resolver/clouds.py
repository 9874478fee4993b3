"""The four Azure clouds and where Microsoft publishes each one's Service Tags file."""

from __future__ import annotations

from dataclasses import dataclass

from resolver.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class Cloud:
    """One Azure cloud: the key users type, its file's name and where Microsoft publishes it."""

    key: str  # what users type: public, usgov, china, germany
    name: str  # the value of the file's "cloud" field and part of its file name
    download_id: int  # Download Center id (details.aspx?id=N)
    folder: str  # stable folder on download.microsoft.com
    frozen: bool = False  # no longer published: never reported stale

    def file_name(self, yyyymmdd: str) -> str:
        return f"ServiceTags_{self.name}_{yyyymmdd}.json"


CLOUDS: tuple[Cloud, ...] = (
    Cloud("public", "Public", 56519, "/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63/"),
    Cloud(
        "usgov", "AzureGovernment", 57063, "/download/6/4/D/64DB03BF-895B-4173-A8B1-BA4AD5D4DF22/"
    ),
    Cloud("china", "China", 57062, "/download/9/D/0/9D03B7E2-4B80-4BF3-9B91-DA8C7D3EE9F9/"),
    Cloud(
        "germany",
        "AzureGermany",
        57064,
        "/download/0/7/6/076274AB-4B0B-4246-A422-4BAF1E03F974/",
        frozen=True,
    ),
)
CLOUD_KEYS = tuple(c.key for c in CLOUDS)


def get_cloud(name: str) -> Cloud:
    """Find a cloud by its key (``public``) or its file name (``AzureGovernment``), any case."""
    wanted = name.strip().lower()
    for cloud in CLOUDS:
        if wanted in (cloud.key, cloud.name.lower()):
            return cloud
    raise NotFoundError(
        f"Unknown cloud {name!r}. Use one of: {', '.join(CLOUD_KEYS)}.",
    )
