"""Tokens, the sources file and what each source may send."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsmetrics.settings import ConfigError, load_forces
from services.ingest.auth import (
    Authenticator,
    Source,
    hash_token,
    load_sources,
    new_token,
    parse_sources,
)
from services.ingest.cli import ingest_cli
from services.ingest.config import EXAMPLE_SOURCES_FILE
from tests.ingest.support import write_sources

FORCES = {"lancashire": object(), "merseyside": object()}
HASH = "sha256:" + "ab" * 32


def test_tokens_are_random_prefixed_and_hashed() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert a.startswith("opsi_")
    assert len(a) >= 40
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", hash_token(a))
    assert hash_token(a) == hash_token(a) != hash_token(b)


def test_authenticate_finds_the_source_of_a_token(tmp_path: Path) -> None:
    tokens = write_sources(tmp_path / "s.toml")
    auth = load_sources(tmp_path / "s.toml", FORCES)
    assert set(auth.sources) == {"rms-test", "referrals-only"}
    for name, token in tokens.items():
        found = auth.authenticate(token)
        assert found is not None
        assert found.name == name
    assert auth.authenticate(tokens["rms-test"] + "x") is None
    assert auth.authenticate("") is None
    assert auth.authenticate(None) is None


def test_several_hashes_per_source_allow_rotation() -> None:
    old, new = new_token(), new_token()
    raw = {
        "sources": {
            "rms": {
                "token_hashes": [hash_token(old), hash_token(new)],
                "types": ["*"],
                "forces": ["*"],
            }
        }
    }
    auth = Authenticator(parse_sources(raw, FORCES, "f"))
    assert auth.authenticate(old) == auth.authenticate(new) != None  # noqa: E711


def test_the_example_file_is_valid_against_the_shipped_forces() -> None:
    forces = load_forces(Path(EXAMPLE_SOURCES_FILE).parent / "forces.toml")
    auth = load_sources(EXAMPLE_SOURCES_FILE, forces)
    assert set(auth.sources) == {"rms-lancashire", "referral-hub"}
    assert auth.sources["referral-hub"].forces is None
    assert auth.sources["referral-hub"].rate_per_s == 20


def test_missing_sources_file_means_nobody_may_send(tmp_path: Path) -> None:
    auth = load_sources(tmp_path / "absent.toml", FORCES)
    assert auth.sources == {}
    assert auth.authenticate(new_token()) is None


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"types": ["burglary"], "forces": ["*"]}, "sources.rms.types"),
        ({"types": ["*"], "forces": ["atlantis"]}, "sources.rms.forces"),
        ({"types": ["*"], "forces": ["*"], "token_hashes": ["md5:abc"]}, "token_hashes"),
        ({"types": ["*"], "forces": ["*"], "token_hashes": []}, "sources.rms.token_hashes"),
        ({"types": ["*"], "forces": ["*"], "burst": 10}, "sources.rms.burst"),
        ({"types": ["*"], "forces": ["*"], "colour": "red"}, "sources.rms.colour"),
        ({"types": [], "forces": ["*"]}, "sources.rms.types"),
    ],
)
def test_bad_entries_name_the_key(entry: dict[str, object], key: str) -> None:
    raw = {"sources": {"rms": {"token_hashes": [HASH], **entry}}}
    with pytest.raises(ConfigError) as err:
        parse_sources(raw, FORCES, "sources.toml")
    assert key in err.value.key
    assert err.value.file == "sources.toml"


def test_bad_source_name_and_shared_hash_are_refused() -> None:
    entry = {"token_hashes": [HASH], "types": ["*"], "forces": ["*"]}
    with pytest.raises(ConfigError, match="slug"):
        parse_sources({"sources": {"RMS System": entry}}, FORCES, "f")
    with pytest.raises(ConfigError, match="also given to 'sys-a'"):
        parse_sources({"sources": {"sys-a": entry, "sys-b": entry}}, FORCES, "f")


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[sources.rms\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sources(path, FORCES)


def test_refusal_by_type_and_force() -> None:
    src = Source("s", frozenset({"referral.received"}), frozenset({"lancashire"}))
    assert src.refusal({"type": "referral.received", "force": "lancashire"}) is None
    assert src.refusal({"type": "arrest.made", "force": "lancashire"}) == "type"
    assert src.refusal({"type": "referral.received", "force": "merseyside"}) == "force"
    # ill-formed values are the classifier's business (schema), not a 403
    assert src.refusal({"type": "nonsense", "force": "lancashire"}) is None
    assert src.refusal({"type": "referral.received", "force": 3}) is None
    anything = Source("any", None, None)
    assert anything.refusal({"type": "arrest.made", "force": "anywhere"}) is None


def test_ingest_token_command_prints_a_token_and_its_hash_line() -> None:
    result = CliRunner().invoke(ingest_cli, ["ingest-token", "--source", "rms-lancashire"])
    assert result.exit_code == 0, result.output
    token = re.search(r"(opsi_\S+)", result.output)
    line = re.search(r'token_hashes = \["(sha256:[0-9a-f]{64})"\]', result.output)
    assert token
    assert line
    assert hash_token(token.group(1)) == line.group(1)
    assert "[sources.rms-lancashire]" in result.output


def test_ingest_token_refuses_a_bad_name() -> None:
    result = CliRunner().invoke(ingest_cli, ["ingest-token", "--source", "Bad Name"])
    assert result.exit_code == 2
