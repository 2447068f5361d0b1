"""Model references -> local paths.

Today a reference is a local path (a Hugging Face directory or a fairseq .pt file). Published model names
(`mms-1b-all`, ...) resolve here too once the model registry and downloads land (configs/models.yaml).
"""

from __future__ import annotations

from pathlib import Path

from mms.checkpoints import CheckpointError


def resolve_model(reference: str | Path, task: str = "asr") -> Path:
    path = Path(reference).expanduser()
    if path.exists():
        return path
    raise CheckpointError(f"{reference}: no such model file or directory "
                          f"(give a Hugging Face MMS directory or a fairseq .pt file for {task})")
