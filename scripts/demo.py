"""The quickstart's main job (run by scripts/demo.sh after setup)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.imagebuild import busybox_image, push
from tests.support.registry import Registry
from tests.support.testhost import TestHost

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
NAME = "app-container"
DECLARATION = f"/etc/hostctl/containers/{NAME}.yaml"

Run = Callable[[Sequence[str]], str]


# The shell traps SIGTERM: as PID 1 it would otherwise ignore `systemctl stop`'s signal.
SCRIPT = "trap 'echo bye; exit 0' TERM; echo hello from $NAME: $GREETING; sleep infinity & wait"


def declaration(image: str, *, network: str | None = None) -> str:
    extra = f"network: {network}\n" if network else ""
    return f"""\
image: {image}
command: ["sh", "-c", "{SCRIPT.replace('$NAME', NAME)}"]
env:
  GREETING: hi
stop_timeout: 5
{extra}"""


def show(title: str, text: str) -> None:
    print(f"\n$ {title}\n{text.rstrip()}", flush=True)


def deploy(run: Run, write: Callable[[str, str], None], body: str) -> None:
    write(DECLARATION, body)
    show(f"cat {DECLARATION}", body)
    show("hostctl install", run([HOSTCTL, "install", "--no-reload"]))
    run(["systemctl", "daemon-reload"])
    show(f"systemctl start {NAME}", run(["systemctl", "start", NAME]))
    time.sleep(0.5)
    show(f"systemctl status {NAME}",
         run(["systemctl", "--no-pager", "--lines=0", "status", NAME]))
    show(f"journalctl -u {NAME}", run(["journalctl", "--no-pager", "-o", "cat", "-u", NAME]))
    show("hostctl images", run([HOSTCTL, "images"]))


def on_this_machine(image: str) -> None:
    def run(argv: Sequence[str]) -> str:
        done = subprocess.run(list(argv), capture_output=True, text=True)
        if done.returncode not in (0, 3):  # 3: `systemctl status` of a non-running unit
            sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout + done.stderr

    def write(path: str, text: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)

    deploy(run, write, declaration(image))
    print(f"\n{NAME} keeps running: `systemctl stop {NAME}` stops it;"
          f" remove {DECLARATION} and `systemctl daemon-reload` to drop it.")


def in_test_host(image: str) -> None:
    print("PID 1 is not systemd here: booting a throwaway systemd test host", flush=True)
    # The test host shares this machine's network namespace: keep the container on the
    # host network so no bridge or firewall rule is left on the machine.

    with TestHost(name="hostctl-demo") as host:
        def run(argv: Sequence[str]) -> str:
            done = host.run(list(argv), check=False)
            if done.returncode not in (0, 3):
                sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
            return str(done.stdout) + str(done.stderr)

        deploy(run, host.write_file, declaration(image, network="host"))
        run(["systemctl", "stop", NAME])
        show(f"systemctl stop {NAME}; systemctl is-active {NAME}",
             run(["systemctl", "is-active", NAME]))
    print("\nThe test host is powered off and removed.")


def main() -> None:
    with Registry() as registry:
        print(f"serving demo/hello:1 from a local registry at {registry.host}", flush=True)
        push(registry.host, "demo/hello", "1", busybox_image())
        image = f"{registry.host}/demo/hello:1"
        if Path("/run/systemd/system").is_dir():
            on_this_machine(image)
        else:
            in_test_host(image)


if __name__ == "__main__":
    main()
