"""hostctl's own iptables rules for one container: way out, forwarding and isolation.

They replace the bridge plugin's ipMasq and the firewall plugin, which between them
fork iptables about fifteen times per container: here all of a container's rules go
in with one `iptables-restore --noflush` (and one `ip6tables-restore` when it has an
IPv6 address), and leave with one more at DEL. Per container address ADDR on bridge BR
of subnet NET:

nat POSTROUTING   -s ADDR ! -d NET, not multicast            -> MASQUERADE (a way out)
filter HOSTCTL-FORWARD (jumped to first thing in FORWARD), in this order:
  inserted on top -d ADDR ! -i BR, new and not DNAT          -> DROP (isolation)
  (internal)      -s ADDR ! -o BR                            -> DROP (no way out)
  appended        -d ADDR related, established or DNAT       -> ACCEPT
  appended        -s ADDR                                    -> ACCEPT

So a container accepts new connections only from its own bridge, and from anywhere to
its published ports (hostctl.network.ports' DNAT, in the same restore); the ACCEPTs let
it work on hosts whose FORWARD policy is DROP, as the firewall plugin's did. Internal
networks get no MASQUERADE.

The shared chains are made once and stay, like CNI's own: HOSTCTL-FORWARD (jumped to
first thing in FORWARD) and, for IPv4, HOSTCTL-INPUT (first thing in INPUT), which
drops packets to 127.0.0.0/8 arriving from outside the host that are neither replies
nor DNAT'd: what a bridge with route_localnet (set for ports published on 127.0.0.1)
would otherwise let containers reach, the host's loopback services. A container with
such ports also puts that guard for its own bridge in HOSTCTL-INPUT, so a missing chain
fails its restore and gets made.
"""

from __future__ import annotations

import fcntl
import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hostctl import proc
from hostctl.errors import RuntimeFailure

CHAIN = "HOSTCTL-FORWARD"
INPUT_CHAIN = "HOSTCTL-INPUT"
LOOPBACK_GUARD = ("-d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT")
Rule = tuple[str, str, str]  # (family "4"|"6", table, "-A|-I CHAIN spec...")


def for_container(name: str, addresses: Sequence[str], subnets: Sequence[str], bridge: str,
                  internal: bool) -> list[Rule]:
    """The rules for container NAME's ADDRESSES on its SUBNETS (same order of families)."""
    rules: list[Rule] = []
    tag = f'-m comment --comment "hostctl {name}"'
    for address in addresses:
        ip = ipaddress.ip_address(address)
        family = str(ip.version)
        host = f"{ip}/{ip.max_prefixlen}"
        net = next((s for s in subnets if ip in ipaddress.ip_network(s)), host)
        if not internal:
            rules.append((family, "nat", f"-A POSTROUTING -s {host} ! -d {net} -m addrtype"
                          f" ! --dst-type MULTICAST {tag} -j MASQUERADE"))
        rules.append((family, "filter", f"-I {CHAIN} -d {host} ! -i {bridge} -m conntrack"
                      f" ! --ctstate RELATED,ESTABLISHED,DNAT {tag} -j DROP"))
        if internal:
            rules.append((family, "filter", f"-I {CHAIN} -s {host} ! -o {bridge} {tag} -j DROP"))
        rules.append((family, "filter", f"-A {CHAIN} -d {host} -m conntrack"
                      f" --ctstate RELATED,ESTABLISHED,DNAT {tag} -j ACCEPT"))
        rules.append((family, "filter", f"-A {CHAIN} -s {host} {tag} -j ACCEPT"))
    return rules


def _batch(rules: Sequence[Rule], family: str, delete: bool) -> str:
    text = []
    # filter first: a restore stops at the first table that fails (the shared chain
    # missing), and the tables before it stay committed
    for table in ("filter", "nat"):
        lines = [spec for fam, tab, spec in rules if fam == family and tab == table]
        if delete:
            lines = ["-D " + spec.split(" ", 2)[1] + " " + spec.split(" ", 2)[2]
                     for spec in lines]
        if lines:
            text += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(text) + "\n" if text else ""


def _restore(family: str, batch: str) -> subprocess.CompletedProcess[bytes]:
    tool = "iptables-restore" if family == "4" else "ip6tables-restore"
    return proc.run([tool, "--noflush", "-w"], input=batch.encode(), check=False)


def loopback_guard(name: str, bridge: str) -> Rule:
    """Container NAME's guard for its BRIDGE (see the module's doc)."""
    return ("4", "filter", f'-A {INPUT_CHAIN} -i {bridge} {LOOPBACK_GUARD}'
                           f' -m comment --comment "hostctl {name}" -j DROP')


def chain_lines(chain: str) -> list[str]:
    """The filter table's lines that make CHAIN and its jump (for a restore)."""
    if chain == CHAIN:
        return [f":{CHAIN} - [0:0]",
                f'-I FORWARD -m comment --comment "hostctl containers" -j {CHAIN}']
    return [f":{INPUT_CHAIN} - [0:0]",
            f"-A {INPUT_CHAIN} ! -i lo {LOOPBACK_GUARD}"
            ' -m comment --comment "hostctl: no loopback from outside" -j DROP',
            f'-I INPUT -m comment --comment "hostctl loopback guard" -j {INPUT_CHAIN}']


def shared_chains(family: str) -> tuple[str, ...]:
    """hostctl's chains that FAMILY's container rules jump to or are put in."""
    return (CHAIN, INPUT_CHAIN) if family == "4" else (CHAIN,)


def _has_chain(family: str, chain: str) -> bool:
    tool = "iptables" if family == "4" else "ip6tables"
    return proc.run([tool, "-w", "-t", "filter", "-S", chain], check=False).returncode == 0


def _make_chain(family: str, lock: Path, batch: str) -> subprocess.CompletedProcess[bytes]:
    """Create the missing shared chains and their jumps once, even with launchers racing
    to, then restore BATCH; its outcome. Under the lock BATCH is tried again first: at
    boot, the starts that failed together find the chains made by the first of them, one
    restore each instead of two `iptables -S` more each, all under the lock."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        done = _restore(family, batch)
        if done.returncode == 0:
            return done
        lines = [line for chain in shared_chains(family) if not _has_chain(family, chain)
                 for line in chain_lines(chain)]
        if lines:
            _restore(family, "\n".join(["*filter", *lines, "COMMIT"]) + "\n")
    return _restore(family, batch)


def add(rules: Sequence[Rule], where: str, lock: Path) -> None:
    """Put RULES in place, one restore per family (the shared chain made when missing,
    under LOCK)."""
    for family in ("4", "6"):
        batch = _batch(rules, family, delete=False)
        if not batch:
            continue
        done = _restore(family, batch)
        if done.returncode != 0:
            done = _make_chain(family, lock, batch)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip() or "no message"
            raise RuntimeFailure(f"cannot add the container's iptables rules: {detail}",
                                 where=where, hint="is iptables (nft or legacy) usable here?")


def delete(rules: Sequence[Rule]) -> list[str]:
    """Remove RULES: one restore per family, or rule by rule when some are already gone
    (a crash between caching and adding them). The failures' messages."""
    failures = []
    for family in ("4", "6"):
        batch = _batch(rules, family, delete=True)
        if not batch or _restore(family, batch).returncode == 0:
            continue
        for fam, table, spec in rules:
            if fam != family:
                continue
            single = _batch([(fam, table, spec)], family, delete=True)
            done = _restore(family, single)
            if done.returncode != 0 and b"does a matching rule exist" not in done.stderr \
                    and b"Bad rule" not in done.stderr:
                failures.append(done.stderr.decode(errors="replace").strip())
    return failures
