"""Reading a plan's declaration files with the readers the generator uses.

The translation has checked every Kubernetes field it maps; the values themselves
(an image reference, a capability's name, a sysctl) are checked here, by the same
readers as any declaration. A problem names the manifest, the pod or container and the
hostctl setting, since the declaration file it was found in is not written yet.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hostctl.declarations.model import Container
from hostctl.declarations.pod_file import Pod, parse_pod_yaml
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError, DeclarationErrors


def read_declarations(files: dict[Path, str], source: Path, *, user: bool = False
                      ) -> tuple[dict[str, Container], dict[str, Pod]]:
    """The containers and pods of FILES (path -> text), read as their paths' kinds;
    SOURCE (the manifest or .kube file) is where they say they come from. A USER's pods
    are rootless: on pasta's network (bridge), none or host, never a declared network."""
    containers: dict[str, Container] = {}
    pods: dict[str, Pod] = {}
    for path, text in files.items():
        kind = "pod" if path.parent.name == "pods" else "container"
        try:
            if kind == "pod":
                pods[path.stem] = dataclasses.replace(parse_pod_yaml(text, source),
                                                      name=path.stem)
                if user and pods[path.stem].network not in ("bridge", "none", "host"):
                    raise DeclarationError(
                        f"a user's pod cannot join the declared network "
                        f"{pods[path.stem].network}", where=f"{source}:network",
                        hint="leave out Network= (a user's pods have pasta's network), "
                        "or play it as root")
            else:
                containers[path.stem] = parse_yaml(text, source, path.stem)
        except DeclarationError as err:
            problems = err.problems if isinstance(err, DeclarationErrors) else (err,)
            first = problems[0]
            key = (first.where or "").rsplit(":", 1)[-1]
            raise DeclarationError(f"{kind} {path.stem}: {key}: {first.message}",
                                   where=str(source), hint=first.hint) from None
    return containers, pods
