"""Kubernetes YAML -> hostctl declarations (hostctl.kube): the translation, its refusals
naming FILE:LINE, the document and the field's path, and what play/down write."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hostctl.declarations.pod_file import parse_pod_yaml
from hostctl.declarations.yaml_reader import parse_yaml
from hostctl.errors import DeclarationError, HostctlError
from hostctl.kube.documents import parse_documents
from hostctl.kube.plan import Plan
from hostctl.kube.translate import translate

DATA = Path("/srv/kube-data")


def plan_of(text: str, **kwargs: Any) -> Plan:
    docs = parse_documents(textwrap.dedent(text), Path("app.yaml"))
    return translate("app", docs, DATA, **kwargs)


def refusal(text: str) -> str:
    with pytest.raises(DeclarationError) as caught:
        plan_of(text)
    return str(caught.value)


def member(plan: Plan, name: str) -> dict[str, Any]:
    return dict(next(m for m in plan.members if m.name == name).settings)


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
  annotations: {note: hi}
spec:
  containers:
  - name: httpd
    image: localhost/busybox:latest
    command: [httpd, -f]
    args: [-p, "8080"]
    workingDir: /www
    ports:
    - {containerPort: 8080, hostPort: 18080}
    - {containerPort: 53, hostPort: 5353, protocol: UDP, hostIP: 127.0.0.1}
    - {containerPort: 9000}
"""


def test_a_pod_becomes_a_pod_with_its_members() -> None:
    plan = plan_of(POD)
    assert [p.name for p in plan.pods] == ["web"]
    pod = plan.pods[0]
    assert pod.ports == ("18080:8080/tcp", "127.0.0.1:5353:53/udp")  # 9000: no hostPort
    assert dict(pod.settings)["labels"] == {"app": "web"}
    settings = member(plan, "web-httpd")
    assert settings["entrypoint"] == ["httpd", "-f"]
    assert settings["command"] == ["-p", "8080"]
    assert settings["workdir"] == "/www"
    assert settings["pod"] == "web"
    assert settings["restart"] == "always"
    assert settings["labels"] == {"app": "web"}
    assert settings["annotations"] == {"note": "hi"}


def test_the_declarations_pass_the_readers_the_generator_uses(tmp_path: Path) -> None:
    from hostctl.kube.install import declarations
    from hostctl.paths import Paths, Scope

    paths = Paths(Scope.SYSTEM, state=tmp_path / "s", run=tmp_path / "r", config=tmp_path / "c")
    plan = plan_of(DEPLOYMENT)
    files = declarations(plan, paths, "app.yaml")
    pods = [parse_pod_yaml(t, p) for p, t in files.items() if p.parent.name == "pods"]
    containers = [parse_yaml(t, p) for p, t in files.items() if p.parent.name == "containers"]
    assert [p.name for p in pods] == ["web-pod-0", "web-pod-1"]
    assert [p.ports[0].host_port for p in pods] == [18080, 18081]
    first = containers[0]
    assert first.pod == "web-pod-0"
    assert first.memory == 64 * 1024**2 and first.cpus == 0.5
    assert first.env == (("GREETING", "hello"), ("TOKEN", "s3cret"))
    assert first.health_cmd is not None and first.health_cmd[0] == "CMD-SHELL"
    assert first.health_on_failure == "kill"
    volumes = {v.destination: v for v in first.volumes}
    assert volumes["/www"].source == str(DATA / "web-pod-0" / "www")
    assert volumes["/www"].read_only
    assert volumes["/data"].source == "web-data" and volumes["/data"].kind == "volume"


DEPLOYMENT = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data:
  GREETING: hello
  index.html: "<h1>hi</h1>"
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret}
data:
  token: SECRET
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: localhost/busybox:latest
        env:
        - name: GREETING
          valueFrom: {configMapKeyRef: {name: web-config, key: GREETING}}
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: web-secret, key: token}}
        ports:
        - {containerPort: 8080, hostPort: 18080, name: http}
        volumeMounts:
        - {name: www, mountPath: /www}
        - {name: data, mountPath: /data}
        livenessProbe:
          httpGet: {path: /index.html, port: http}
          periodSeconds: 2
        resources: {limits: {memory: 64Mi, cpu: 500m}, requests: {cpu: 100m}}
      volumes:
      - {name: www, configMap: {name: web-config}}
      - {name: data, persistentVolumeClaim: {claimName: web-data}}
""".replace("SECRET", base64.b64encode(b"s3cret").decode())


def test_deployment_replicas_are_pods_with_consecutive_host_ports() -> None:
    plan = plan_of(DEPLOYMENT)
    assert [p.name for p in plan.pods] == ["web-pod-0", "web-pod-1"]
    assert [p.ports for p in plan.pods] == [("18080:8080/tcp",), ("18081:8080/tcp",)]
    assert plan.volumes == ("web-data",)
    assert sorted(f.path for f in plan.files) == [
        "web-pod-0/www/GREETING", "web-pod-0/www/index.html",
        "web-pod-1/www/GREETING", "web-pod-1/www/index.html"]
    settings = member(plan, "web-pod-1-httpd")
    assert "http://127.0.0.1:8080/index.html" in settings["health_cmd"]
    assert settings["health_interval"] == 2


def test_one_replica_is_podmans_pod_name_and_zero_is_none() -> None:
    one = DEPLOYMENT.replace("replicas: 2", "replicas: 1")
    assert [p.name for p in plan_of(one).pods] == ["web-pod"]
    assert [p.ports for p in plan_of(one).pods] == [("18080:8080/tcp",)]
    zero = DEPLOYMENT.replace("replicas: 2", "replicas: 0")
    assert "no Pod or Deployment" in refusal(zero)


def test_unsupported_fields_name_file_line_document_and_path() -> None:
    text = DEPLOYMENT.replace("        livenessProbe:",
                              "        lifecycle: {}\n        livenessProbe:")
    message = refusal(text)
    line = textwrap.dedent(text).splitlines().index("        lifecycle: {}") + 1
    assert message.startswith(f"app.yaml:{line}: document 4: "
                              "spec.template.spec.containers[0].lifecycle: not supported")


def test_unsupported_kinds_are_named_with_their_document() -> None:
    message = refusal(POD + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    assert "document 2: kind: 'Service' is not supported" in message
    assert f"app.yaml:{len(POD.splitlines()) + 3}:" in message


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("image: localhost/busybox:latest", "image: localhost/busybox:latest\n    tty: true",
     "spec.containers[0].tty: not supported"),
    ("    ports:", "    securityContext: {privileged: true}\n    ports:",
     "spec.containers[0].securityContext.privileged: not supported"),
    ("{containerPort: 9000}", "{containerPort: 9000, protocol: SCTP}",
     "spec.containers[0].ports[2].protocol: SCTP is not supported"),
    ("    ports:", "    resources: {limits: {memory: lots}}\n    ports:",
     "spec.containers[0].resources.limits.memory: 'lots' is not a quantity"),
    ("    ports:", "    resources: {limits: {nvidia.com/gpu: 1}}\n    ports:",
     "spec.containers[0].resources.limits.nvidia.com/gpu: not supported"),
    ("spec:\n", "spec:\n  restartPolicy: Sometimes\n",
     "spec.restartPolicy: 'Sometimes' is not one of Always, OnFailure, Never"),
    ("spec:\n", "spec:\n  volumes: [{name: x, nfs: {server: a, path: /}}]\n",
     "spec.volumes[0].nfs: not supported"),
    ("    ports:", "    volumeMounts: [{name: nope, mountPath: /x}]\n    ports:",
     "spec.containers[0].volumeMounts[0].name: no volume 'nope'"),
    ("    ports:", "    env: [{name: A, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]\n"
     "    ports:", "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: 'status.podIP' "
     "is not supported: the pod's address is leased when the pod starts"),
    ("    ports:", "    env: [{name: A, valueFrom: {resourceFieldRef: {resource: x}}}]\n"
     "    ports:", "spec.containers[0].env[0].valueFrom.resourceFieldRef: not supported"),
    ("    ports:", "    env: [{name: A, valueFrom: {configMapKeyRef: {name: c, key: k}}}]\n"
     "    ports:", "spec.containers[0].env[0].valueFrom.configMapKeyRef: ConfigMap 'c' is "
     "not in the files"),
    ("    ports:", "    imagePullPolicy: Sometimes\n    ports:",
     "spec.containers[0].imagePullPolicy: 'Sometimes' is not one of"),
    ("  name: web\n", "  name: web\n  finalizers: [x]\n", "metadata.finalizers: not supported"),
    ("    ports:", "    env: [{name: N, value: 1}]\n    ports:",
     "spec.containers[0].env[0].value: 1 is not a string"),
    ("apiVersion: v1\n", "", "apiVersion: missing"),
])
def test_refusals_name_the_path(old: str, new: str, expected: str) -> None:
    assert old in POD
    message = refusal(POD.replace(old, new, 1))
    assert f"document 1: {expected}" in message, message


def test_yaml_mistakes_have_their_line() -> None:
    assert refusal("apiVersion: v1\nkind: [\n").startswith("app.yaml:")
    message = refusal(POD.replace("  name: web\n", "  name: web\n  name: other\n"))
    assert "app.yaml:5: document 1: metadata.name: duplicate key" in message


def test_env_value_envfrom_and_optional_refs() -> None:
    text = POD.replace("    ports:", textwrap.indent(textwrap.dedent("""\
        env:
        - {name: PLAIN, value: "1"}
        - {name: FLAG, value: "true"}
        - name: MISSING
          valueFrom: {configMapKeyRef: {name: nope, key: k, optional: true}}
        envFrom:
        - {configMapRef: {name: cfg}, prefix: CFG_}
        - {secretRef: {name: sec}}
        - {configMapRef: {name: absent, optional: true}}
        ports:"""), "    "), 1)
    text += textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg}
        data: {A: a, B: b}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: sec}
        stringData: {PASSWORD: pw}
        """)
    env = member(plan_of(text), "web-httpd")["env"]
    assert env == {"CFG_A": "a", "CFG_B": "b", "PASSWORD": "pw", "PLAIN": "1", "FLAG": "true"}


def test_security_context_of_pod_and_container() -> None:
    text = POD.replace("spec:\n", "spec:\n  securityContext: {runAsUser: 1000, runAsGroup: 100,"
                       " supplementalGroups: [5]}\n", 1).replace("    ports:", textwrap.indent(
                           textwrap.dedent("""\
        securityContext:
          runAsUser: 2000
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {add: [NET_ADMIN], drop: [ALL]}
        ports:"""), "    "), 1)
    settings = member(plan_of(text), "web-httpd")
    assert settings["user"] == "2000:100"
    assert settings["groups"] == ["5"]
    assert settings["read_only"] is True and settings["no_new_privileges"] is True
    assert settings["cap_add"] == ["NET_ADMIN"] and settings["cap_drop"] == ["ALL"]
    assert "runAsNonRoot: needs a non-zero runAsUser" in refusal(POD.replace(
        "    ports:", "    securityContext: {runAsNonRoot: true}\n    ports:", 1))


def _probes(text: str) -> str:
    probes = textwrap.indent(textwrap.dedent(text), "    ")
    return POD.replace("    ports:", probes + "    ports:", 1)


def test_an_exec_liveness_probe_is_the_check_and_kills() -> None:
    settings = member(plan_of(_probes("""\
        livenessProbe:
          exec: {command: [cat, /tmp/healthy]}
          periodSeconds: 5
          timeoutSeconds: 2
          failureThreshold: 4
          initialDelaySeconds: 7
        """)), "web-httpd")
    assert settings["health_cmd"] == ["cat", "/tmp/healthy"]
    assert (settings["health_interval"], settings["health_timeout"],
            settings["health_retries"], settings["health_start_period"]) == (5, 2, 4, 7)
    assert settings["health_on_failure"] == "kill"
    assert "notify" not in settings


def test_tcp_and_readiness_probes() -> None:
    settings = member(plan_of(_probes("""\
        readinessProbe:
          tcpSocket: {port: 8080}
        """)), "web-httpd")
    assert settings["health_cmd"] == "nc -w 1 127.0.0.1 8080 </dev/null >/dev/null 2>&1"
    assert settings["notify"] == "healthy"
    assert "health_on_failure" not in settings
    both = member(plan_of(_probes("""\
        livenessProbe: {exec: {command: ["true"]}}
        readinessProbe: {exec: {command: [test, -e, /ready]}}
        """)), "web-httpd")
    assert both["health_cmd"] == ["true"]
    assert both["health_startup_cmd"] == ["test", "-e", "/ready"]
    assert both["notify"] == "healthy"
    same = member(plan_of(_probes("""\
        livenessProbe: {exec: {command: ["true"]}}
        readinessProbe: {exec: {command: ["true"]}}
        """)), "web-httpd")
    assert same["health_cmd"] == ["true"] and "health_startup_cmd" not in same
    startup = member(plan_of(_probes("""\
        livenessProbe: {exec: {command: ["true"]}}
        startupProbe: {exec: {command: ["false"]}, failureThreshold: 30, periodSeconds: 1}
        """)), "web-httpd")
    assert startup["health_startup_cmd"] == ["false"]
    assert startup["health_startup_retries"] == 30


def test_probe_refusals() -> None:
    three = refusal(_probes("""\
        livenessProbe: {exec: {command: ["a"]}}
        readinessProbe: {exec: {command: ["b"]}}
        startupProbe: {exec: {command: ["c"]}}
        """))
    assert "spec.containers[0].readinessProbe: a third, different check" in three
    assert "livenessProbe.successThreshold: must be 1" in refusal(_probes("""\
        livenessProbe: {exec: {command: ["a"]}, successThreshold: 2}
        """))
    assert "livenessProbe.httpGet.port: 'web' is neither" in refusal(_probes("""\
        livenessProbe: {httpGet: {port: web}}
        """))
    assert "livenessProbe: give exactly one of exec" in refusal(_probes("""\
        livenessProbe: {periodSeconds: 3}
        """))
    assert "livenessProbe.grpc: not supported" in refusal(_probes("""\
        livenessProbe: {grpc: {port: 1}}
        """))


def test_volumes_of_every_kind() -> None:
    text = POD.replace("spec:\n", textwrap.dedent("""\
        spec:
          volumes:
          - {name: host, hostPath: {path: /srv/www/, type: Directory}}
          - {name: scratch, emptyDir: {}}
          - {name: ram, emptyDir: {medium: Memory}}
          - {name: claim, persistentVolumeClaim: {claimName: db, readOnly: true}}
          - name: conf
            configMap:
              name: cfg
              defaultMode: 0600
              items: [{key: a, path: sub/a.conf}, {key: b, path: b.conf, mode: 0400}]
          - {name: sec, secret: {secretName: s}}
          - {name: gone, secret: {secretName: nope, optional: true}}
        """), 1).replace("    ports:", textwrap.indent(textwrap.dedent("""\
        volumeMounts:
        - {name: host, mountPath: /www, subPath: html}
        - {name: scratch, mountPath: /tmp/s}
        - {name: ram, mountPath: /cache}
        - {name: claim, mountPath: /db}
        - {name: conf, mountPath: /etc/app}
        - {name: sec, mountPath: /run/s, readOnly: true}
        ports:"""), "    "), 1) + textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg}
        data: {a: "1", b: "2"}
        binaryData: {c: THREE}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: s}
        data: {key: KEY}
        """).replace("THREE", base64.b64encode(b"3").decode()).replace(
        "KEY", base64.b64encode(b"k").decode())
    plan = plan_of(text)
    settings = member(plan, "web-httpd")
    assert settings["volumes"] == [
        "/srv/www/html:/www", "web-scratch:/tmp/s", "db:/db:ro",
        f"{DATA}/web/conf:/etc/app:ro", f"{DATA}/web/sec:/run/s:ro"]
    assert settings["tmpfs"] == ["/cache"]
    assert plan.volumes == ("db",) and plan.scratch_volumes == ("web-scratch",)
    files = {f.path: (f.content, f.mode) for f in plan.files}
    assert files == {"web/conf/sub/a.conf": (b"1", 0o600), "web/conf/b.conf": (b"2", 0o400),
                     "web/sec/key": (b"k", 0o644)}


def test_volume_refusals() -> None:
    def with_volume(volume: str, mount: str) -> str:
        return POD.replace("spec:\n", f"spec:\n  volumes: [{volume}]\n", 1).replace(
            "    ports:", f"    volumeMounts: [{mount}]\n    ports:", 1)

    assert "volumeMounts[0].subPath: not supported here" in refusal(with_volume(
        "{name: v, emptyDir: {}}", "{name: v, mountPath: /v, subPath: x}"))
    assert "volumeMounts[0].subPath: must be a relative path" in refusal(with_volume(
        "{name: v, hostPath: {path: /srv}}", "{name: v, mountPath: /v, subPath: ../etc}"))
    assert "spec.volumes[0].hostPath.path: not an absolute path" in refusal(with_volume(
        "{name: v, hostPath: {path: srv}}", "{name: v, mountPath: /v}"))
    assert "spec.volumes[0].configMap.name: ConfigMap 'x' is not in the files" in refusal(
        with_volume("{name: v, configMap: {name: x}}", "{name: v, mountPath: /v}"))


def test_init_containers_run_to_their_end_first() -> None:
    text = POD.replace("  containers:\n", "  initContainers:\n  - {name: setup, image: "
                       "localhost/busybox:latest, command: [touch, /ready]}\n  containers:\n", 1)
    plan = plan_of(text)
    assert [m.name for m in plan.members] == ["web-setup", "web-httpd"]
    init = member(plan, "web-setup")
    assert init["service"] == {"Type": "oneshot", "RemainAfterExit": "yes"}
    assert init["restart"] == "no" and init["pod"] == "web"
    assert member(plan, "web-httpd")["unit"] == {"Requires": ["web-setup.service"],
                                                 "After": ["web-setup.service"]}


def test_restart_policy_grace_dns_and_hosts() -> None:
    text = POD.replace("spec:\n", textwrap.dedent("""\
        spec:
          restartPolicy: OnFailure
          terminationGracePeriodSeconds: 20
          hostname: www
          hostAliases: [{ip: 192.0.2.1, hostnames: [db, db.local]}]
          dnsConfig: {nameservers: [192.0.2.53], searches: [example.com],
                      options: [{name: ndots, value: "2"}, {name: rotate}]}
          nodeSelector: {disk: ssd}
        """), 1)
    plan = plan_of(text)
    settings = member(plan, "web-httpd")
    assert settings["restart"] == "on-failure" and settings["stop_timeout"] == 20
    pod = dict(plan.pods[0].settings)
    assert pod["hostname"] == "www"
    assert pod["add_hosts"] == {"db": "192.0.2.1", "db.local": "192.0.2.1"}
    assert pod["dns"] == ["192.0.2.53"] and pod["dns_search"] == ["example.com"]
    assert pod["dns_options"] == ["ndots:2", "rotate"]
    never = member(plan_of(POD.replace("spec:\n", "spec:\n  restartPolicy: Never\n", 1)),
                   "web-httpd")
    assert never["restart"] == "no"


def test_host_port_clashes_and_overflow_are_refused() -> None:
    second = POD.replace("name: web\n", "name: web2\n", 1)
    assert "host port 18080/tcp is published by pods web and web2" in refusal(
        POD + "---\n" + second)
    high = DEPLOYMENT.replace("hostPort: 18080", "hostPort: 65535")
    assert "ports[0].hostPort: replica 1 would publish port 65536" in refusal(high)


def test_kube_file_keys_apply() -> None:
    plan = plan_of(DEPLOYMENT, network="backend", publish=["127.0.0.1:9000:8080"],
                   auto_update={"httpd": "registry"})
    assert [p.ports for p in plan.pods] == [("127.0.0.1:9000:8080/tcp",),
                                            ("127.0.0.1:9001:8080/tcp",)]
    assert all(dict(p.settings)["network"] == "backend" for p in plan.pods)
    assert member(plan, "web-pod-0-httpd")["auto_update"] == "registry"


def test_quantities() -> None:
    from hostctl.kube.quantities import cpus, memory_bytes

    assert memory_bytes("128Mi") == 128 * 1024**2
    assert memory_bytes("1G") == 10**9
    assert memory_bytes("1e3") == 1000
    assert memory_bytes("1.5Ki") == 1536
    assert cpus("500m") == 0.5 and cpus("2") == 2.0
    for bad in ("", "12Q", "-1", "0"):
        with pytest.raises(ValueError):
            memory_bytes(bad)


def test_play_and_down_write_and_remove_exactly_their_files(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from hostctl.api import kube
    from hostctl.paths import Scope, for_scope

    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    manifest = tmp_path / "shop.yaml"
    manifest.write_text(DEPLOYMENT)
    jobs: list[tuple[str, str]] = []

    def act(method: str, unit: str) -> str:
        jobs.append((method, unit))
        return "done"

    record = kube.play([manifest], Scope.SYSTEM, act=act)
    paths = for_scope(Scope.SYSTEM)
    assert record.units == ("web-pod-0-pod.service", "web-pod-1-pod.service")
    assert jobs == [("reload", ""), ("StartUnit", "web-pod-0-pod.service"),
                    ("StartUnit", "web-pod-1-pod.service")]
    member_file = paths.config / "containers" / "web-pod-0-httpd.yaml"
    assert member_file.stat().st_mode & 0o777 == 0o600  # it holds the Secret's value
    assert (paths.config / "pods" / "web-pod-1.yaml").is_file()
    data = paths.config / "kube" / "shop" / "data" / "web-pod-0" / "www" / "index.html"
    assert data.read_text() == "<h1>hi</h1>"
    with pytest.raises(HostctlError, match="already played"):
        kube.play([manifest], Scope.SYSTEM, act=act)
    manifest.write_text(DEPLOYMENT.replace("replicas: 2", "replicas: 1"))
    kube.play([manifest], Scope.SYSTEM, replace=True, act=act)
    assert not member_file.exists()  # the replaced app's stale files are gone
    assert (paths.config / "containers" / "web-pod-httpd.yaml").is_file()
    claim = paths.state / "volumes" / "web-data" / "_data"
    claim.mkdir(parents=True)
    jobs.clear()
    kube.down(manifest, Scope.SYSTEM, act=act)
    assert ("StopUnit", "web-pod-pod.service") in jobs
    assert ("StopUnit", "web-pod-httpd.service") in jobs
    assert not list((paths.config / "containers").iterdir())
    assert not list((paths.config / "pods").iterdir())
    assert not (paths.config / "kube" / "shop").exists()
    assert claim.is_dir()  # the claim's volume stays
    with pytest.raises(HostctlError, match="not played"):
        kube.down(manifest, Scope.SYSTEM, act=act)
    kube.play([manifest], Scope.SYSTEM, act=act)
    kube.down(manifest, Scope.SYSTEM, volumes=True, act=act)
    assert not claim.exists()


def test_play_refuses_to_overwrite_a_declaration_it_does_not_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.api import kube
    from hostctl.paths import Scope

    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    own = tmp_path / "config" / "containers" / "web-httpd.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("image: mine\n")
    manifest = tmp_path / "app.yaml"
    manifest.write_text(POD)
    with pytest.raises(DeclarationError, match="exists and is not app's"):
        kube.play([manifest], Scope.SYSTEM)
    assert own.read_text() == "image: mine\n"
    assert not (tmp_path / "config" / "kube" / "app.json").exists()


CORPUS = Path("/work/shared/quadlet-corpus")
if not CORPUS.is_dir():
    CORPUS = Path(__file__).parent / "quadlet-corpus"
KUBE_FILES = sorted(CORPUS.glob("*.kube"))
VALID_KUBE = {"absolute.path", "basic", "downforce", "multiple-yaml", "network.quadlet",
              "oneshot", "service-name", "workingdir-service", "workingdir-yaml-abs"}


@pytest.mark.parametrize("path", KUBE_FILES, ids=lambda p: p.name)
def test_corpus_kube_files_validate_or_name_the_key(path: Path) -> None:
    from hostctl.declarations.kube_file import load_kube

    stem = path.name.removesuffix(".kube")
    if stem in VALID_KUBE:
        decl = load_kube(path)
        assert decl.yaml and all(p.is_absolute() for p in decl.yaml)
        return
    with pytest.raises(DeclarationError) as caught:
        load_kube(path)
    err = caught.value
    assert err.where and err.where.startswith(f"{path}:"), err
    key = err.where.rsplit(":", 1)[1]
    line = path.read_text().splitlines()[int(err.where.split(":")[-2]) - 1]
    assert line.startswith(f"{key}=") and err.hint, err


def test_corpus_kube_meanings() -> None:
    from hostctl.declarations.kube_file import load_kube

    assert len(KUBE_FILES) >= 14
    assert load_kube(CORPUS / "absolute.path.kube").yaml == (Path("/opt/k8s/deployment.yml"),)
    assert load_kube(CORPUS / "basic.kube").yaml == (CORPUS / "deployment.yml",)
    assert load_kube(CORPUS / "multiple-yaml.kube").yaml == (CORPUS / "foo.yml",
                                                             CORPUS / "bar.yml")
    assert load_kube(CORPUS / "network.quadlet.kube").network == "basic"
    assert load_kube(CORPUS / "service-name.kube").unit_name == "basic.service"
    assert load_kube(CORPUS / "downforce.kube").down_force
    assert load_kube(CORPUS / "workingdir-yaml-abs.kube").working_directory == \
        "/etc/containers/systemd"
    assert load_kube(CORPUS / "workingdir-service.kube").working_directory is None  # [Service]
    assert load_kube(CORPUS / "oneshot.kube").service == (("Type", ("oneshot",)),)
    with pytest.raises(DeclarationError, match="RemapUsers"):
        load_kube(CORPUS / "remap-manual.kube")  # podman refuses it too (assert-failed)


@pytest.mark.parametrize(("text", "expected"), [
    ("[Kube]\n", "no Yaml= in [Kube]"),
    ("[Kube]\nYaml=a.yaml\nAutoUpdate=sometimes\n", "3:AutoUpdate"),
    ("[Kube]\nYaml=a.yaml\nExitCodePropagation=any\n", "ExitCodePropagation=any is not"),
    ("[Kube]\nYaml=a.yaml\n[Service]\nExecStart=/bin/true\n", "4:ExecStart"),
    ("[Kube]\nYaml=a.yaml\n[Container]\nImage=x\n", "section [Container]"),
    ("[Kube]\nYaml=a.yaml\nYaml=b.yaml\nSetWorkingDirectory=yaml\n", "several Yaml="),
    ("[Kube]\nYaml=a.yaml\nNetwork=a\nNetwork=b\n", "a second Network="),
])
def test_kube_file_refusals(tmp_path: Path, text: str, expected: str) -> None:
    from hostctl.declarations.kube_file import load_kube

    path = tmp_path / "app.kube"
    path.write_text(text)
    with pytest.raises(DeclarationError) as caught:
        load_kube(path)
    assert expected in str(caught.value)


def test_a_kube_file_in_the_generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.kube import quadlet
    from hostctl.paths import Scope, for_scope
    from hostctl.units.generator import generate

    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    quadlets = tmp_path / "quadlets"
    quadlets.mkdir()
    monkeypatch.setenv("HOSTCTL_DECLARATION_PATH", f"{tmp_path / 'run' / 'containers'}:"
                       f"{quadlets}")
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "shop.yaml").write_text(DEPLOYMENT)
    (quadlets / "shop.kube").write_text(
        "[Kube]\nYaml=../k8s/shop.yaml\nPublishPort=127.0.0.1:9000:8080\n"
        "SetWorkingDirectory=yaml\n[Install]\nWantedBy=multi-user.target\n")
    reported: list[str] = []
    units = generate(Scope.SYSTEM, None, report=reported.append)
    assert reported == []
    kube = units["shop.service"]
    assert "Wants=web-pod-0-pod.service\nWants=web-pod-1-pod.service" in kube
    assert "ExecStart=" in kube and "kube-setup shop" in kube
    assert f"WorkingDirectory={tmp_path / 'k8s'}" in kube
    assert "PartOf=shop.service" in units["web-pod-1-pod.service"]
    assert "BindsTo=web-pod-1-pod.service" in units["web-pod-1-httpd.service"]
    assert "web-pod-0-httpd-healthcheck.timer" in units
    quadlet.setup("shop", Scope.SYSTEM)
    paths = for_scope(Scope.SYSTEM)
    assert (paths.run / "containers" / "web-pod-0-httpd.yaml").is_file()
    assert "127.0.0.1:9001:8080/tcp" in (paths.run / "kube" / "pods" / "web-pod-1.yaml"
                                         ).read_text()
    from hostctl.pod.holder import find_pod

    assert find_pod("web-pod-1", Scope.SYSTEM, paths).ports[0].host_port == 9001
    again = generate(Scope.SYSTEM, None, report=reported.append)
    assert reported == [] and again.keys() == units.keys()  # kube-setup's copies: skipped
    scratch = paths.state / "volumes" / "web-data"
    scratch.mkdir(parents=True)
    quadlet.release("shop", Scope.SYSTEM)
    assert scratch.is_dir()  # a claim: kept without KubeDownForce=
    (quadlets / "shop.kube").write_text("[Kube]\nYaml=../k8s/shop.yaml\nKubeDownForce=true\n")
    quadlet.release("shop", Scope.SYSTEM)
    assert not scratch.exists()
    (tmp_path / "k8s" / "shop.yaml").write_text(POD.replace("name: web\n", "name: web-pod-0\n"))
    (quadlets / "web-pod-0-httpd.yaml").write_text("image: localhost/busybox:latest\n")
    units = generate(Scope.SYSTEM, None, report=reported.append)
    assert "web-pod-0-httpd is declared by" in units["shop.service"]  # fails saying why


def test_the_documented_fields_are_the_ones_read() -> None:
    import re

    from hostctl.kube.containers import CONTAINER_FIELDS
    from hostctl.kube.pods import POD_FIELDS, POD_IGNORED
    from hostctl.kube.reference import FIELDS

    for field, _ in FIELDS:
        container = re.match(r"containers\[\]\.(\w+)", field)
        if container:
            assert container[1] in CONTAINER_FIELDS, field
        elif field.startswith(("restartPolicy", "terminationGrace", "hostNetwork",
                               "initContainers")):
            assert field.split()[0].rstrip(",") in POD_FIELDS, field
    assert all(name in POD_IGNORED for name in ("nodeSelector", "affinity", "dnsPolicy"))
    documented = " ".join(field for field, _ in FIELDS)
    for name in (*CONTAINER_FIELDS, *POD_FIELDS, *POD_IGNORED):
        assert name in documented, name


def test_values_the_readers_refuse_name_the_manifest_pod_and_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.api import kube
    from hostctl.paths import Scope

    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    manifest = tmp_path / "app.yaml"
    manifest.write_text(POD.replace("    ports:", "    securityContext: {capabilities: "
                                    "{add: [NOT_A_CAP]}}\n    ports:", 1))
    with pytest.raises(DeclarationError) as caught:
        kube.play([manifest], Scope.SYSTEM)
    assert str(caught.value).startswith(f"{manifest}: container web-httpd: cap_add[0]: ")
    assert "NOT_A_CAP" in str(caught.value)
    assert not (tmp_path / "config" / "containers").exists()  # nothing written


def test_host_paths_or_create_are_made(tmp_path: Path) -> None:
    from hostctl.kube.install import make_host_paths

    made, file = tmp_path / "a" / "dir", tmp_path / "b" / "file"
    text = POD.replace("spec:\n", "spec:\n  volumes:\n"
                       f"  - {{name: d, hostPath: {{path: {made}, type: DirectoryOrCreate}}}}\n"
                       f"  - {{name: f, hostPath: {{path: {file}, type: FileOrCreate}}}}\n", 1)
    plan = plan_of(text)
    assert plan.host_paths == ((str(made), "DirectoryOrCreate"), (str(file), "FileOrCreate"))
    make_host_paths(plan)
    make_host_paths(plan)  # again: both are there
    assert made.is_dir() and file.is_file() and file.read_bytes() == b""
    bad = POD.replace("spec:\n", "spec:\n  volumes: [{name: d, hostPath: {path: /x, type: "
                      "Pipe}}]\n", 1)
    assert "spec.volumes[0].hostPath.type: 'Pipe' is not a hostPath type" in refusal(bad)


def test_a_refused_replace_stops_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from hostctl.api import kube
    from hostctl.paths import Scope

    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    manifest = tmp_path / "app.yaml"
    manifest.write_text(POD)
    kube.play([manifest], Scope.SYSTEM)
    jobs: list[tuple[str, str]] = []
    manifest.write_text(POD.replace("- name: httpd", "- name: side\n    image: x/y:1\n"
                                    "  - name: httpd", 1))  # a second container
    side = tmp_path / "config" / "containers" / "web-side.yaml"
    side.write_text("image: mine\n")
    with pytest.raises(DeclarationError, match=r"web-side\.yaml exists and is not app's"):
        kube.play([manifest], Scope.SYSTEM, replace=True,
                  act=lambda method, unit: jobs.append((method, unit)) or "done")
    assert jobs == [] and side.read_text() == "image: mine\n"


def test_field_refs_give_the_pods_name_namespace_labels_and_annotations() -> None:
    env = textwrap.indent(textwrap.dedent("""\
        env:
        - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace, apiVersion: v1}}}
        - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
        - {name: NOTE, valueFrom: {fieldRef: {fieldPath: 'metadata.annotations["note"]'}}}
        - {name: NONE, valueFrom: {fieldRef: {fieldPath: "metadata.labels['absent']"}}}
        ports:"""), "    ")
    pod = member(plan_of(POD.replace("    ports:", env, 1)), "web-httpd")["env"]
    assert pod == {"NAME": "web", "NS": "default", "APP": "web", "NOTE": "hi", "NONE": ""}
    in_ns = POD.replace("  name: web\n", "  name: web\n  namespace: shop\n", 1)
    assert member(plan_of(in_ns.replace("    ports:", env, 1)), "web-httpd")["env"]["NS"] \
        == "shop"
    deployment = textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, labels: {tier: back}}
        spec:
          replicas: 2
          selector: {matchLabels: {app: api}}
          template:
            metadata: {labels: {app: api}}
            spec:
              containers:
              - name: c
                image: localhost/busybox:latest
        """) + textwrap.indent(env.replace("    ports:", ""), "    ")
    plan = plan_of(deployment)
    replica = member(plan, "api-pod-1-c")["env"]
    assert (replica["NAME"], replica["APP"]) == ("api-pod-1", "api")
    assert member(plan, "api-pod-0-c")["env"]["NAME"] == "api-pod-0"


def _serve_header_checks() -> tuple[Any, int, list[str]]:
    """A loopback HTTP server answering 200 only to requests with X-Probe: yes (and
    404 otherwise), recording the Host header it was sent."""
    import http.server
    import threading

    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            ok = self.headers.get("X-Probe") == "yes it's 100%"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet: the test reads what do_GET recorded, not the access log."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1], hosts


@pytest.mark.parametrize("tool", ["curl", "wget", "nc"])
def test_http_probe_headers_reach_the_server(tool: str, tmp_path: Path) -> None:
    import shutil
    import subprocess

    found = shutil.which(tool) if tool != "nc" else shutil.which("busybox")
    if found is None:
        pytest.skip(f"no {tool} on this host")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sh", "head", "grep", "printf"):
        (bin_dir / name).symlink_to(shutil.which(name) or "/bin/busybox")
    (bin_dir / tool).symlink_to(found)
    server, port, hosts = _serve_header_checks()
    try:
        results = []
        for headers in ("[{name: X-Probe, value: \"yes it's 100%\"}, {name: Host, value: h.test}]",
                        "[{name: X-Probe, value: \"no\"}]"):
            command = member(plan_of(_probes(f"""\
                livenessProbe:
                  httpGet: {{port: {port}, path: /health, httpHeaders: {headers}}}
                """)), "web-httpd")["health_cmd"]
            done = subprocess.run([str(bin_dir / "sh"), "-c", command], timeout=20,
                                  env={"PATH": str(bin_dir)}, capture_output=True, check=False)
            results.append(done.returncode)
    finally:
        server.shutdown()
        server.server_close()
    assert results[0] == 0 and results[1] != 0, results
    assert hosts[0] == "h.test"


def test_http_header_refusals() -> None:
    assert "httpGet.httpHeaders[0].name: 'X Y' is not an HTTP header name" in refusal(_probes("""\
        livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: X Y, value: z}]}}
        """))
    assert "httpGet.httpHeaders[0].value: 1 is not a string" in refusal(_probes("""\
        livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: X, value: 1}]}}
        """))


def test_a_users_kube_pod_on_a_declared_network_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostctl.kube.quadlet import check_file
    from hostctl.paths import Scope

    for name in ("STATE", "RUN", "CONFIG"):
        monkeypatch.setenv(f"HOSTCTL_{name}_DIR", str(tmp_path / name.lower()))
    (tmp_path / "web.yaml").write_text(POD)
    on_network = tmp_path / "web.kube"
    on_network.write_text("[Kube]\nYaml=web.yaml\nNetwork=backend.network\n")
    with pytest.raises(DeclarationError) as caught:
        check_file(on_network, Scope.USER)
    assert "a user's pod cannot join the declared network backend" in str(caught.value)
    check_file(on_network, Scope.SYSTEM)  # root's pods can
    plain = tmp_path / "plain.kube"
    plain.write_text("[Kube]\nYaml=web.yaml\n")
    check_file(plain, Scope.USER)  # pasta's network
