"""How each Kubernetes field maps, for docs/declarations.md (hostctl.declarations.docs).

The translation (hostctl.kube.containers, pods, probes, translate) is what decides; a
unit test checks each field named here is one the readers accept.
"""

from __future__ import annotations

# (field path, what it becomes in hostctl)
FIELDS: tuple[tuple[str, str], ...] = (
    ("Pod", "a pod (`pods/NAME.yaml`), its containers members named POD-CONTAINER"),
    ("Deployment", "`spec.replicas` pods NAME-pod-0, NAME-pod-1... (one replica: NAME-pod, "
     "podman's name); replica N publishes each hostPort as hostPort+N"),
    ("ConfigMap, Secret", "values for env and files for volumes (Secret: Opaque, `data` and "
     "`stringData`)"),
    ("PersistentVolumeClaim", "the named volume of its name (kept by `kube down` unless "
     "--volumes)"),
    ("metadata.labels, annotations", "`labels`/`annotations` of every member; labels also "
     "the pod's"),
    ("containers[].image, imagePullPolicy", "`image`, `pull` (Always: always, IfNotPresent: "
     "missing, Never: never)"),
    ("containers[].command, args", "`entrypoint`, `command`"),
    ("containers[].env (value, valueFrom configMapKeyRef/secretKeyRef), envFrom "
     "(configMapRef/secretRef, prefix)", "`env`, values resolved from the files' ConfigMaps "
     "and Secrets (`optional: true`: left out when missing)"),
    ("containers[].env valueFrom fieldRef (metadata.name, metadata.namespace, "
     "metadata.labels['KEY'], metadata.annotations['KEY'])", "`env`: the pod's name "
     "(a replica's: NAME-pod-N), the manifest's namespace (default: default), a label or "
     "annotation (missing: empty); status.podIP and the other fields are refused (the "
     "address is leased when the pod starts, after the members' environment is written)"),
    ("containers[].ports (containerPort, hostPort, protocol, hostIP)", "the pod's `ports` "
     "(only those with a hostPort; TCP and UDP)"),
    ("containers[].volumeMounts (name, mountPath, readOnly, subPath)", "`volumes`/`tmpfs`; "
     "subPath on hostPath, configMap and secret volumes"),
    ("containers[].workingDir", "`workdir`"),
    ("containers[].securityContext (runAsUser, runAsGroup, runAsNonRoot, "
     "readOnlyRootFilesystem, allowPrivilegeEscalation, capabilities)", "`user`, `group`, "
     "`read_only`, `no_new_privileges`, `cap_add`, `cap_drop`; privileged is refused"),
    ("containers[].resources.limits (memory, cpu)", "`memory` (bytes), `cpus`; requests are "
     "accepted and have no effect on one host"),
    ("containers[].livenessProbe", "`health_cmd` (+ interval, timeout, retries, start "
     "period) with `health_on_failure: kill`: the unit fails and `restart` applies"),
    ("containers[].readinessProbe", "`notify: healthy`; its command is the health check when "
     "there is no livenessProbe, else the startup check when there is no startupProbe"),
    ("containers[].startupProbe", "`health_startup_cmd`, interval, timeout, retries"),
    ("probe exec, httpGet (path, port, host, scheme, httpHeaders), tcpSocket", "exec as it "
     "is; httpGet runs curl, else wget, else a request through nc (status 200-399 passes), "
     "httpHeaders as curl -H, wget --header or the request's lines; tcpSocket connects "
     "with nc: the image needs one of them (busybox has nc)"),
    ("initContainers", "members run as oneshot units to their end before the others start"),
    ("restartPolicy", "`restart` (Always: always, OnFailure: on-failure, Never: no)"),
    ("terminationGracePeriodSeconds", "`stop_timeout` of each member"),
    ("hostNetwork, hostname, hostAliases, dnsConfig", "the pod's `network: host`, "
     "`hostname`, `add_hosts`, `dns`/`dns_search`/`dns_options`"),
    ("securityContext (pod: runAsUser, runAsGroup, runAsNonRoot, supplementalGroups, "
     "sysctls)", "defaults of every member's `user`, `groups`, `sysctls`"),
    ("volumes: hostPath, emptyDir, configMap, secret, persistentVolumeClaim", "a bind mount; "
     "a named volume POD-NAME removed by `kube down` (medium: Memory: a tmpfs, one "
     "container); read-only files under the app's data directory; the claim's named volume"),
    ("nodeSelector, affinity, tolerations, schedulerName, priorityClassName, "
     "serviceAccountName, automountServiceAccountToken, enableServiceLinks, dnsPolicy, "
     "Deployment strategy, revisionHistoryLimit, minReadySeconds, progressDeadlineSeconds",
     "accepted; they place or account pods in a cluster and do nothing on one host"),
)
