"""The committed OpenAPI document (``services/ingest/openapi.json``), generated from the code.

``python -m services.ingest.openapi`` rewrites it; a test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from opsmetrics.settings import Settings
from services.ingest.app import create_app
from services.ingest.auth import Authenticator
from services.ingest.config import IngestSettings
from services.ingest.dedup import DedupStore
from services.ingest.kafka_link import KafkaLink

OPENAPI_FILE: Final = Path(__file__).with_name("openapi.json")


def _no_kafka() -> Any:
    raise RuntimeError("not used to generate the document")


def document() -> dict[str, Any]:
    """The OpenAPI document of the API (independent of local configuration)."""
    app = create_app(
        Settings(),
        IngestSettings.model_construct(),
        auth=Authenticator({}),
        dedup=DedupStore(None, 1.0),
        link=KafkaLink(_no_kafka, _no_kafka),
    )
    return app.openapi()


def render(doc: dict[str, Any]) -> str:
    """Stable text of the document."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(path: Path = OPENAPI_FILE) -> bool:
    """True when the committed file differs from the code."""
    return not path.exists() or path.read_text(encoding="utf-8") != render(document())


def write(path: Path = OPENAPI_FILE) -> Path:
    """Write the document; return its path."""
    path.write_text(render(document()), encoding="utf-8")
    return path


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        if stale():
            sys.exit(f"{OPENAPI_FILE} is stale: run `python -m services.ingest.openapi`")
        print(f"{OPENAPI_FILE} is current")
    else:
        print(f"wrote {write()}")
