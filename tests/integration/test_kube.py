"""Kubernetes YAML in a real systemd: `hostctl kube play` of a Deployment of two
replicas answering on their host ports, a ConfigMap as env and as a volume, a
PersistentVolumeClaim as a named volume that survives `kube down`, a probe acting as a
health check; `kube down` leaves no unit and no container. A lingering user's `kube
play --user` of a Pod of two on rootless pods (localhost between them, its port
published, fieldRef env, `kube down --user` leaving nothing), and the user's .kube file.
Then the same through a quadlet .kube file: its unit starts the pod, comes back after a
reboot, and stopping it stops everything."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import netguest

pytestmark = pytest.mark.integration

HOSTCTL = str(Path(sys.executable).parent / "hostctl")
APP = f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config}}
data:
  GREETING: hello
  index.html: "hello from kube\\n"
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: web-data}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: httpd
        image: {netguest.IMAGE}
        command: [sh, -c, 'echo greeting=$GREETING; hostname > /data/seen-$(hostname);
                  exec httpd -f -p 8080 -h /www']
        env:
        - name: GREETING
          valueFrom: {{configMapKeyRef: {{name: web-config, key: GREETING}}}}
        ports:
        - {{containerPort: 8080, hostPort: 18080, name: http}}
        volumeMounts:
        - {{name: www, mountPath: /www}}
        - {{name: data, mountPath: /data}}
        livenessProbe:
          httpGet: {{path: /index.html, port: http}}
          periodSeconds: 2
      volumes:
      - {{name: www, configMap: {{name: web-config}}}}
      - {{name: data, persistentVolumeClaim: {{claimName: web-data}}}}
"""
SHOP = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: shop}}
spec:
  containers:
  - name: front
    image: {netguest.IMAGE}
    command: [sh, -c, 'trap "exit 0" TERM; echo shop > /tmp/index.html;
              httpd -f -p 80 -h /tmp & wait']
    ports: [{{containerPort: 80, hostPort: 18090}}]
  - name: probe
    image: {netguest.IMAGE}
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1 & wait; done']
"""
USER = "alice"
TEAM = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: team, labels: {{tier: front}}}}
spec:
  containers:
  - name: web
    image: {netguest.IMAGE}
    command: [sh, -c, 'trap "exit 0" TERM; echo team > /tmp/index.html;
              httpd -f -p 80 -h /tmp & wait']
    ports: [{{containerPort: 80, hostPort: 18100}}]
    readinessProbe:
      httpGet: {{port: 80, path: /index.html, httpHeaders: [{{name: X-Probe, value: "1"}}]}}
      periodSeconds: 1
  - name: client
    image: {netguest.IMAGE}
    env:
    - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: TIER, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['tier']"}}}}}}
    command: [sh, -c, 'trap "exit 0" TERM; until [ -n "$w" ]; do sleep 0.2;
              w=$(printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 127.0.0.1 80 | tail -n 1);
              done; echo got $w in $POD $TIER; while :; do sleep 1 & wait; done']
"""


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    """One private-network guest for the module (its registry serves netguest.IMAGE)."""
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        guest.uid = guest.lingering_user(USER)
        yield guest
    finally:
        guest.close()


def fetch(host: Any, url: str, wanted: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        done = host.run(["curl", "-sS", "--max-time", "2", url], check=False)
        if done.stdout == wanted or time.monotonic() > deadline:
            return str(done.stdout)
        time.sleep(0.2)


def units(host: Any, pattern: str) -> list[str]:
    out = host.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", pattern]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def containers(host: Any) -> list[str]:
    out = host.run(["runc", "--root", "/run/hostctl/runc", "list", "-q"], check=False).stdout
    return out.split()


def test_play_a_deployment_and_take_it_down(host: Any) -> None:
    host.write_file("/root/app.yaml", APP)
    played = host.run([HOSTCTL, "kube", "play", "/root/app.yaml"], check=False)
    try:
        assert played.returncode == 0, played.stderr + host.journal("web-pod-0-httpd.service")
        assert played.stdout.split() == ["web-pod-0-pod.service", "web-pod-1-pod.service"]
        # each replica answers on its own host port, serving the ConfigMap's file
        for port in (18080, 18081):
            assert fetch(host, f"http://127.0.0.1:{port}/", "hello from kube\n") == \
                "hello from kube\n"
        assert "greeting=hello" in host.journal("web-pod-1-httpd.service")  # ConfigMap env
        # the liveness probe is the container's health check, run on its timer
        timer = host.run(["systemctl", "is-active", "web-pod-0-httpd-healthcheck.timer"],
                         check=False)
        assert timer.stdout.strip() == "active"
        checked = host.run([HOSTCTL, "healthcheck", "web-pod-0-httpd"], check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # the claim is one named volume both replicas write into
        data = "/var/lib/hostctl/volumes/web-data/_data"
        seen = host.run(["ls", data]).stdout.split()
        assert seen == ["seen-web-pod-0", "seen-web-pod-1"]
        replaced = host.run([HOSTCTL, "kube", "play", "/root/app.yaml"], check=False)
        assert replaced.returncode != 0 and "already played" in replaced.stderr
    finally:
        down = host.run([HOSTCTL, "kube", "down", "/root/app.yaml"], check=False)
    assert down.returncode == 0, down.stderr
    assert units(host, "web-pod-*") == []
    assert containers(host) == []
    assert host.run(["ls", data]).stdout.split() == ["seen-web-pod-0", "seen-web-pod-1"]
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:18080/"],
                    check=False).returncode != 0
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


def as_user(host: Any, *argv: str, check: bool = True, input: str | None = None) -> Any:
    env = f"XDG_RUNTIME_DIR=/run/user/{host.uid}"
    return host.run(["runuser", "-u", USER, "--", "env", env, *argv], check=check,
                    input=input)


def user_units(host: Any, pattern: str) -> list[str]:
    out = as_user(host, "systemctl", "--user", "list-units", "--all", "--plain",
                  "--no-legend", pattern).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def user_log(host: Any, unit: str, text: str) -> str:
    """A user unit's output (by its identifier) once it holds TEXT, or after 20 s."""
    deadline = time.monotonic() + 20
    while True:
        out: str = host.run(["journalctl", "-b", "--no-pager", "-o", "cat",
                             f"SYSLOG_IDENTIFIER={unit}"]).stdout
        if text in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def test_a_user_plays_a_pod_of_two_and_takes_it_down(host: Any) -> None:
    home = f"/home/{USER}"
    as_user(host, "sh", "-c", f"cat > {home}/team.yaml", input=TEAM)
    played = as_user(host, HOSTCTL, "kube", "play", "--user", f"{home}/team.yaml",
                     check=False)
    try:
        assert played.returncode == 0, played.stderr + host.sh(
            "journalctl -b --no-pager -n 80").stdout
        assert played.stdout.split() == ["team-pod.service"]
        assert fetch(host, "http://127.0.0.1:18100/", "team\n") == "team\n"  # pasta
        assert "got team in team front" in user_log(host, "team-client", "got ")
        deadline = time.monotonic() + 20  # web is active once its readinessProbe passed
        while (active := as_user(host, "systemctl", "--user", "is-active", "team-web.service",
                                 check=False).stdout.strip()) != "active":
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert active == "active", user_log(host, "team-web", "never") + host.sh(
            "journalctl -b --no-pager -n 60").stdout
    finally:
        down = as_user(host, HOSTCTL, "kube", "down", "--user", f"{home}/team.yaml",
                       check=False)
    assert down.returncode == 0, down.stderr
    assert user_units(host, "team-*") == []
    assert as_user(host, "ls", f"/run/user/{host.uid}/hostctl/pods",
                   check=False).stdout.strip() == ""
    assert host.run(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:18100/"],
                    check=False).returncode != 0
    # the user's .kube file: its unit plays the same pod
    decls = f"{home}/.config/hostctl/containers"
    as_user(host, "mkdir", "-p", decls)
    as_user(host, "sh", "-c", f"cat > {decls}/team.kube",
            input=f"[Kube]\nYaml={home}/team.yaml\n")
    try:
        as_user(host, "systemctl", "--user", "daemon-reload")
        started = as_user(host, "systemctl", "--user", "start", "team.service", check=False)
        assert started.returncode == 0, host.sh("journalctl -b --no-pager -n 80").stdout
        assert fetch(host, "http://127.0.0.1:18100/", "team\n") == "team\n"
        as_user(host, "systemctl", "--user", "stop", "team.service")
        assert as_user(host, "systemctl", "--user", "is-active", "team-pod.service",
                       "team-web.service", check=False).stdout.split() == ["inactive"] * 2
    finally:
        as_user(host, "systemctl", "--user", "stop", "team.service", check=False)
        as_user(host, "rm", "-f", f"{decls}/team.kube")
        as_user(host, "systemctl", "--user", "daemon-reload")
    assert as_user(host, "ls", f"/run/user/{host.uid}/hostctl/pods",
                   check=False).stdout.strip() == ""


def test_a_kube_file_is_a_unit_over_its_pods(host: Any) -> None:
    host.write_file("/root/shop.yaml", SHOP)
    host.write_file("/etc/hostctl/containers/shop.kube",
                    "[Kube]\nYaml=/root/shop.yaml\n[Install]\nWantedBy=multi-user.target\n")
    try:
        host.run(["systemctl", "daemon-reload"])
        started = host.run(["systemctl", "start", "shop.service"], check=False)
        assert started.returncode == 0, host.journal("shop.service")
        assert fetch(host, "http://127.0.0.1:18090/", "shop\n") == "shop\n", \
            host.journal("shop-front.service")
        # enabled by its [Install]: back after a reboot, the run directory's copies made anew
        host.reboot()
        host.sh(netguest.UPLINK)
        assert fetch(host, "http://127.0.0.1:18090/", "shop\n") == "shop\n", \
            host.journal("shop.service")
        active = host.run(["systemctl", "is-active", "shop-pod.service", "shop-front.service",
                           "shop-probe.service"], check=False).stdout.split()
        assert active == ["active"] * 3
        host.run(["systemctl", "stop", "shop.service"])
        inactive = host.run(["systemctl", "is-active", "shop-pod.service",
                             "shop-front.service", "shop-probe.service"], check=False)
        assert inactive.stdout.split() == ["inactive"] * 3, \
            host.journal("shop-front.service") + host.journal("shop-probe.service")
        assert containers(host) == []
    finally:
        host.run(["systemctl", "stop", "shop.service"], check=False)
        host.run(["rm", "-f", "/etc/hostctl/containers/shop.kube"])
        host.run(["systemctl", "daemon-reload"])
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)
