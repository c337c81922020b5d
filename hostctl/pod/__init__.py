"""Running pods: the namespaces a pod's unit holds and its members join.

`hostctl pod-setup NAME` is the ExecStart of the pod's unit (NAME-pod.service, a oneshot
with RemainAfterExit=yes) and `hostctl pod-release NAME` its ExecStop. Setup makes,
under RUN/pods/NAME/ (RUN: /run/hostctl):
- the network namespace, as a container's is made (hostctl.network.plan and attach,
  for the identity NAME-pod: the bridge or declared network's wiring, the published
  ports once for the pod; host: none, the host's is shared);
- an IPC and a UTS namespace (the UTS one with the pod's host name), each made by a
  short-lived thread and pinned by a bind mount of its nsfs file onto RUN/pods/NAME/ipc
  and .../uts, as `ip netns add` pins a network namespace: no process stays behind;
- a tmpfs on RUN/pods/NAME/shm, the members' shared /dev/shm (shm_size);
- the pod's /etc/hosts (kept up to date with its network's names) and resolv.conf;
- pod.json: what members need (hostctl.pod.member reads it).
Release undoes all of it (lazy unmounts); it is idempotent and also runs before a
setup, for what a crash left. Rootless pods are not supported: their namespaces would
need a holder process in the user's user namespace (see docs/declarations.md).
"""
