"""A compose project run as systemd units in a real test host: web + db + cache, db with
a health check that web waits for (service_healthy), names, a published port, a secret,
a named volume, web on two networks (db on `back` only, cache on `default` only), an
alias per network (web's `api` on `back` only, cache's `kv` on `default`); reboot; a
broken compose file; `down` (and what it keeps); a user's (rootless) project of two
services on its own network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_e2e import HOSTCTL, prop
from tests.integration.test_network import fetch, get, in_container, record_id
from tests.integration.test_pods import wait_for
from tests.support import netguest

pytestmark = pytest.mark.integration
SRC = "/srv/shop"
# db takes 2 s to become ready (its health check tests /tmp/ready); web records what the
# names db and cache resolve to when it starts, then serves them.
COMPOSE = f"""\
x-base: &base
  image: {netguest.IMAGE}
  stop_signal: SIGKILL
services:
  web:
    <<: *base
    command: ["sh", "-c", "echo web starting; mkdir -p /www; getent hosts db > /www/db;
      getent hosts cache > /www/cache; echo $$GREETING > /www/index.html;
      exec httpd -f -p 80 -h /www"]
    environment:
      GREETING: ${{GREETING:-unset}}
    ports: ["${{WEB_PORT}}:80"]
    depends_on:
      db: {{condition: service_healthy}}
      cache: {{condition: service_started}}
    networks:
      default:
      back: {{aliases: [api]}}
  db:
    <<: *base
    command: ["sh", "-c", "echo db starting; cat /run/secrets/pw; date >> /data/boots;
      sleep 2; touch /tmp/ready; echo db ready; exec httpd -f -p 5432 -h /data"]
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 500ms
      retries: 20
    volumes: [data:/data]
    secrets: [pw]
    networks: [back]
    deploy:
      resources:
        limits: {{memory: 256M}}
      placement:
        constraints: [node.role == manager]
  cache:
    <<: *base
    command: ["sh", "-c", "mkdir -p /www; echo cache > /www/index.html;
      echo $$NOTE > /www/note; exec httpd -f -p 6379 -h /www"]
    environment:
      NOTE: ${{GREETING:-unset}}
    ports: ["6380:6379"]
    networks:
      default: {{aliases: [kv]}}
networks:
  back: {{}}
volumes:
  data: {{}}
secrets:
  pw:
    file: ./pw.txt
"""
BROKEN = f"""\
services:
  app:
    image: {netguest.IMAGE}
    privileged: true
"""


@pytest.fixture(scope="module")
def host() -> Iterator[Any]:
    guest = netguest.boot()
    try:
        guest.run([HOSTCTL, "install"])
        guest.write_file(f"{SRC}/compose.yaml", COMPOSE)
        guest.write_file(f"{SRC}/.env", "WEB_PORT=8080\nGREETING=hello-compose\n")
        guest.write_file(f"{SRC}/pw.txt", "s3cret\n")
        yield guest
    finally:
        guest.close()


def compose(host: Any, *args: str, check: bool = True) -> Any:
    return host.sh(f"cd {SRC} && exec {HOSTCTL} compose " + " ".join(args), check=check,
                   timeout=120)


def realtime(host: Any, unit: str, predicate: Any) -> int:
    """The journal time (µs) of UNIT's first entry whose fields satisfy PREDICATE."""
    out = host.run(["journalctl", "--no-pager", "-o", "json", "--unit", unit]).stdout
    for line in out.splitlines():
        entry = json.loads(line)
        if predicate(entry):
            return int(entry["__REALTIME_TIMESTAMP"])
    raise AssertionError(f"no such entry in {unit}:\n{host.journal(unit)}")


def message(text: str) -> Any:
    return lambda entry: entry.get("MESSAGE") == text


def started(entry: dict[str, Any]) -> bool:
    return entry.get("JOB_TYPE") == "start" and entry.get("JOB_RESULT") == "done"


def test_up_starts_in_dependency_order(host: Any) -> None:
    done = compose(host, "up", "-d", check=False)
    assert done.returncode == 0, done.stderr + "".join(
        host.journal(f"shop-{s}.service") for s in ("db", "web", "cache"))
    assert "ignored: services.db.deploy.placement" in done.stderr
    for unit in ("shop-web.service", "shop-db.service", "shop-cache.service"):
        assert prop(host, unit, "ActiveState") == "active", host.journal(unit)
    # db became active (healthy) only after it was ready, and web started after that
    db_ready = realtime(host, "shop-db.service", message("db ready"))
    db_active = realtime(host, "shop-db.service", started)
    web_first = realtime(host, "shop-web.service", message("web starting"))
    assert db_ready <= db_active <= web_first
    assert "s3cret" in host.journal("shop-db.service")
    assert prop(host, "shop-db.service", "MemoryMax") == str(256 * 1024 * 1024)
    rows = compose(host, "ps", "--format", "json").stdout
    by_name = {row["name"]: row for row in json.loads(rows)}
    assert by_name["shop-db-1"]["health"] == "healthy"
    assert by_name["shop-web-1"]["ports"] == ["0.0.0.0:8080->80/tcp"]
    assert by_name["shop-web-1"]["state"] == "active"


def test_services_reach_each_other_by_name_and_ports_answer(host: Any) -> None:
    assert fetch(host, "http://127.0.0.1:8080/") == "hello-compose\n"
    assert fetch(host, "http://192.0.2.2:8080/db").split()[1:] == ["shop-db-1", "db"]
    cache = fetch(host, "http://192.0.2.2:8080/cache").split()
    assert cache[1:] == ["shop-cache-1", "cache", "kv"]
    assert get(host, "shop-web-1", cache[0], 6379).stdout == "cache\n"
    # web is on default and back; db on back only, cache on default only
    db = fetch(host, "http://192.0.2.2:8080/db").split()[0]
    probe = f"nc -w 1 {db} 5432 </dev/null && echo open"
    assert in_container(host, "shop-web-1", "sh", "-c", probe).stdout == "open\n"
    assert in_container(host, "shop-cache-1", "sh", "-c", probe, check=False).stdout == ""
    assert "\tshop-web-1 web api\n" in in_container(host, "shop-db-1", "cat",
                                                   "/etc/hosts").stdout
    cache_hosts = in_container(host, "shop-cache-1", "cat", "/etc/hosts").stdout
    assert "\tshop-db-1 db\n" not in cache_hosts
    # web's alias api is given on back: db (on back) resolves it, cache (on default) not,
    # though both resolve web by its service name
    assert "\tshop-web-1 web\n" in cache_hosts
    api = in_container(host, "shop-db-1", "getent", "hosts", "api").stdout.split()
    assert api[1:] == ["shop-web-1", "web", "api"]
    assert in_container(host, "shop-cache-1", "getent", "hosts", "api",
                        check=False).returncode != 0
    logs = compose(host, "logs", "db").stdout
    assert "db ready" in logs and "shop-db-1" in logs


def test_enabled_project_is_back_after_a_reboot(host: Any) -> None:
    host.reboot()
    host.sh(netguest.UPLINK)
    for unit in ("shop-web.service", "shop-db.service", "shop-cache.service"):
        host.run(["systemctl", "start", "shop.target"])  # waits for the boot's jobs
        assert prop(host, unit, "ActiveState") == "active", host.journal(unit)
    assert fetch(host, "http://127.0.0.1:8080/") == "hello-compose\n"
    assert len(host.read_file("/var/lib/hostctl/volumes/shop_data/_data/boots").split(
        "\n")) == 3  # two boots of db kept in the named volume


def test_restart_takes_the_recorded_start_until_a_project_file_changes(host: Any) -> None:
    """A service on the project's network starts again from its record (names and the
    port replayed); a change to the installed project's .env means a full start. (cache:
    web is on two networks, whose starts are never recorded.)"""
    first = record_id(host, "shop-cache-1")
    assert first, host.journal("shop-cache.service")
    host.run(["systemctl", "restart", "shop-cache.service"])
    assert record_id(host, "shop-cache-1") == first  # the recorded start wrote nothing
    assert fetch(host, "http://127.0.0.1:6380/note") == "hello-compose\n"
    # web requires cache, so systemd restarted it too (in full: two networks); the name
    # cache and its alias kv on default (the record's) still lead to the replayed address
    assert wait_for(host, "shop-web.service", "active") == "active"
    cache = fetch(host, "http://192.0.2.2:8080/cache").split()
    assert cache[1:] == ["shop-cache-1", "cache", "kv"]
    assert get(host, "shop-web-1", cache[0], 6379).stdout == "cache\n"
    assert record_id(host, "shop-web-1") == ""  # on two networks: no record
    dotenv = "/etc/hostctl/compose/shop/.env"
    host.write_file(dotenv, "WEB_PORT=8080\nGREETING=changed\n")
    try:
        host.run(["systemctl", "restart", "shop-cache.service"])
        assert record_id(host, "shop-cache-1") != first
        assert fetch(host, "http://127.0.0.1:6380/note") == "changed\n"
    finally:
        host.write_file(dotenv, "WEB_PORT=8080\nGREETING=hello-compose\n")
    host.run(["systemctl", "restart", "shop-cache.service"])
    assert fetch(host, "http://127.0.0.1:6380/note") == "hello-compose\n"


def test_broken_compose_file_gives_a_failing_unit(host: Any) -> None:
    host.write_file("/etc/hostctl/compose/broken/compose.yaml", BROKEN)
    host.run(["systemctl", "daemon-reload"])
    assert host.run(["systemctl", "start", "broken.target"], check=False).returncode != 0
    assert ("/etc/hostctl/compose/broken/compose.yaml:4:services.app.privileged"
            in host.journal("broken.service"))
    host.run(["rm", "-r", "/etc/hostctl/compose/broken"])
    host.run(["systemctl", "daemon-reload"])


def test_down_removes_units_networks_containers_but_keeps_volumes(host: Any) -> None:
    compose(host, "down")
    for unit in ("shop-web.service", "shop-db.service", "shop.target"):
        assert prop(host, unit, "LoadState") == "not-found"
    for bridge in ("hc-shop_default", "hc-shop_back"):
        assert host.run(["ip", "link", "show", bridge], check=False).returncode != 0
    assert host.run(["ls", "/run/hostctl/containers"]).stdout.split() == []
    assert host.run(["runc", "--root", "/run/hostctl/runc", "list", "-q"]).stdout.split() == []
    assert host.run(["test", "-s", "/var/lib/hostctl/volumes/shop_data/_data/boots"],
                    check=False).returncode == 0
    assert netguest.leftovers(host).without_shared() == (0, 0, 0, 0, 0)


PROJECT_TASK = """\
    - name: {title}
      hostctl.hostctl.compose_project:
        project: tiny
        state: {state}
        remove_volumes: true
        definition:
          services:
            one:
              image: @IMAGE@
              command: ["sh", "-c", "echo {word}; exec sleep 600"]
              stop_signal: SIGKILL
              volumes: ["keep:/keep"]
          volumes:
            keep: {{}}
      register: {name}
{extra}"""
PID = """\
    - command: systemctl show -P MainPID tiny-one.service
      register: {name}
      changed_when: false
      check_mode: false
"""
PLAY = "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + "".join([
    PROJECT_TASK.format(title="deploy", state="started", word="first", name="deployed",
                        extra=""),
    PROJECT_TASK.format(title="again", state="started", word="first", name="again",
                        extra=""),
    PID.format(name="pid_before"),
    PROJECT_TASK.format(title="check a change", state="started", word="second",
                        name="checked", extra="      check_mode: true\n      diff: true\n"),
    PID.format(name="pid_after"),
    "    - command: test -d /var/lib/hostctl/volumes/tiny_keep/_data\n"
    "      changed_when: false\n",
    PROJECT_TASK.format(title="remove", state="absent", word="first", name="removed",
                        extra=""),
    "    - copy:\n"
    "        content: \"{{ {'deployed': deployed, 'again': again, 'checked': checked,"
    " 'removed': removed, 'pids': [pid_before.stdout, pid_after.stdout]} | to_json }}\"\n"
    "        dest: /tmp/result.json\n",
]).replace("@IMAGE@", netguest.IMAGE)


def play(host: Any) -> dict[str, Any]:
    """Run PLAY in the guest with the checkout's collection; the tasks' results."""
    venv = HOSTCTL.rsplit("/", 1)[0]
    tree = "/tmp/collections/ansible_collections/hostctl"
    host.sh(f"mkdir -p {tree} && ln -sfn {netguest.CHECKOUT}/ansible_collection {tree}/hostctl")
    host.write_file("/tmp/play.yml", PLAY)
    done = host.run(
        [f"{venv}/ansible-playbook", "-i", "localhost,", "-c", "local", "/tmp/play.yml",
         "-e", f"ansible_python_interpreter={venv}/python"],
        env={"ANSIBLE_COLLECTIONS_PATH": "/tmp/collections"}, check=False, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(host.read_file("/tmp/result.json")))


def test_ansible_module_is_idempotent_with_check_mode_and_diff(host: Any) -> None:
    results = play(host)
    assert results["deployed"]["changed"] and results["again"]["changed"] is False
    checked = results["checked"]
    assert checked["changed"] and "second" in checked["diff"]["prepared"]
    before, after = results["pids"]
    assert before == after and int(before) > 0  # check mode restarted nothing
    assert results["removed"]["changed"]
    assert prop(host, "tiny-one.service", "LoadState") == "not-found"
    assert host.run(["test", "-e", "/var/lib/hostctl/volumes/tiny_keep"],
                    check=False).returncode != 0  # remove_volumes: down -v


USER = "alice"
USER_SRC = f"/home/{USER}/pair"
USER_COMPOSE = f"""\
services:
  srv:
    image: {netguest.IMAGE}
    command: ["sh", "-c", "mkdir -p /www; echo user-srv > /www/index.html;
      exec httpd -f -p 80 -h /www"]
    stop_signal: SIGKILL
    ports: ["8093:80"]
  cli:
    image: {netguest.IMAGE}
    command: ["sleep", "600"]
    stop_signal: SIGKILL
"""
USER_NET_UNIT = "hostctl-network-pair_default.service"


def test_a_users_project_on_its_own_network_reaches_by_name_and_publishes(host: Any) -> None:
    """Last (it adds a user): alice's project `pair` runs rootless on its own network
    pair_default, a user network whose unit `up` starts with the services: cli finds srv
    by name and reaches it, srv's published port answers; `down` stops the network's
    unit and its pasta."""
    uid = host.lingering_user(USER)
    netguest.start_registry(host)  # alice pulls the image; the reboot ended the registry

    def as_user(*argv: str, check: bool = True, input: str | None = None) -> Any:
        return host.run(["runuser", "-u", USER, "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}",
                         *argv], check=check, input=input)

    def user_compose(*args: str) -> Any:
        return as_user("sh", "-c", f"cd {USER_SRC} && exec {HOSTCTL} compose "
                       + " ".join(args), check=False)

    as_user("mkdir", "-p", USER_SRC)
    as_user("sh", "-c", f"cat > {USER_SRC}/compose.yaml", input=USER_COMPOSE)
    try:
        done = user_compose("up", "-d", "--user")
        assert done.returncode == 0, (done.stdout + done.stderr
                                      + host.sh("journalctl --no-pager -n 60").stdout)
        assert as_user("systemctl", "--user", "is-active", USER_NET_UNIT,
                       check=False).stdout.strip() == "active"
        assert fetch(host, "http://127.0.0.1:8093/") == "user-srv\n"
        pid = as_user("systemctl", "--user", "show", "-P", "MainPID",
                      "pair-cli.service").stdout.strip()
        srv = host.run(["nsenter", "-t", pid, "-a", "getent", "hosts", "srv"]).stdout.split()
        assert srv[1:] == ["pair-srv-1", "srv"]
        script = (f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {srv[0]} 80"
                  " | sed '1,/^\\r*$/d'")
        assert host.run(["nsenter", "-t", pid, "-a", "sh", "-c", script]).stdout == "user-srv\n"
        # a port added: `up` restarts the network's unit (pasta's forwards) and its members
        as_user("sh", "-c", f"cat > {USER_SRC}/compose.yaml",
                input=USER_COMPOSE.replace('["8093:80"]', '["8093:80", "8094:80"]'))
        done = user_compose("up", "-d", "--user")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"restart {USER_NET_UNIT}" in done.stdout + done.stderr
        assert fetch(host, "http://127.0.0.1:8094/") == "user-srv\n"
    finally:
        down = user_compose("down", "--user")
    assert down.returncode == 0, down.stderr
    assert as_user("systemctl", "--user", "show", "-P", "LoadState",
                   USER_NET_UNIT).stdout.strip() == "not-found"
    assert host.sh(f"pgrep -u {USER} '^pass?t' || true").stdout.strip() == ""
