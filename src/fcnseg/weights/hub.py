"""The Hugging Face Hub: ``hf://OWNER/NAME[@REVISION]`` weights, loaded through ``huggingface_hub`` (``fcnseg[hub]``).

A repository holds an fcnseg checkpoint, ``model.safetensors`` (what ``fcnseg export --format hub`` writes, with a
model card); it is downloaded into ``FCNSEG_HOME/hub`` (huggingface_hub's cache layout, its own locks) and then read
from there; ``FCNSEG_OFFLINE=1`` uses that cache only. ``HF_ENDPOINT`` (a mirror of the Hub) is honoured.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import CheckpointError, WeightsError
from ..home import offline, subdir

__all__ = ["HUB_FILE", "hub_checkpoint", "parse_hub_name"]

HUB_FILE = "model.safetensors"
_REF = re.compile(r"hf://([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@([\w./-]+))?")


def parse_hub_name(ref: str) -> tuple[str, str | None]:
    """``hf://OWNER/NAME[@REVISION]`` → (``OWNER/NAME``, revision or None).

    Raises:
        WeightsError: not of that form.
    """
    match = _REF.fullmatch(ref.strip())
    if not match:
        raise WeightsError(f"{ref!r}: expected hf://OWNER/NAME or hf://OWNER/NAME@REVISION")
    return match.group(1), match.group(2)


def hub_checkpoint(ref: str) -> Path:
    """The local copy of the fcnseg checkpoint in Hub repository ``ref`` (downloaded on first use).

    Raises:
        WeightsError: huggingface_hub missing, offline and not cached, or the repository/file cannot be fetched.
        CheckpointError: the file is not an fcnseg checkpoint.
    """
    repo, revision = parse_hub_name(ref)
    try:
        from huggingface_hub import errors as hub_errors
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise WeightsError(f"{ref}: loading from the Hugging Face Hub needs pip install 'fcnseg[hub]'") from None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    where = f"{endpoint or 'https://huggingface.co'}/{repo}"
    try:
        path = hf_hub_download(
            repo,
            HUB_FILE,
            revision=revision,
            cache_dir=subdir("hub"),
            local_files_only=offline(),
            endpoint=endpoint,
        )
    except hub_errors.LocalEntryNotFoundError:
        if offline():
            raise WeightsError(
                f"{ref} is not cached in {subdir('hub')} and FCNSEG_OFFLINE=1 forbids downloading it; run once "
                "online, or unset FCNSEG_OFFLINE"
            ) from None
        raise WeightsError(f"{ref}: cannot reach {where} (is the network or HF_ENDPOINT up?)") from None
    except hub_errors.RepositoryNotFoundError:
        raise WeightsError(f"{ref}: no such repository at {where} (or it is private: log in with hf auth)") from None
    except hub_errors.RevisionNotFoundError:
        raise WeightsError(f"{ref}: {where} has no revision {revision!r}") from None
    except hub_errors.EntryNotFoundError:
        raise WeightsError(
            f"{ref}: {where} has no {HUB_FILE} (not an fcnseg repository; fcnseg export --format hub writes one)"
        ) from None
    except (hub_errors.HfHubHTTPError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{ref}: fetching {HUB_FILE} from {where} failed ({first})") from None
    _check(Path(path), ref)
    return Path(path)


def _check(path: Path, ref: str) -> None:
    from ..runtime.checkpoint import read_info

    try:
        read_info(path)
    except CheckpointError as e:
        raise CheckpointError(f"{ref}: {e}") from None
