"""Kubernetes YAML: `hostctl kube play|down` and quadlet `.kube` files.

Glossary
- manifest: one YAML file of Kubernetes documents (`---` separated); a document is one
  object: Pod, Deployment, ConfigMap, Secret or PersistentVolumeClaim.
- app: what one `kube play` (or one `NAME.kube` file) installs, named after the file
  stem; its record lists every file it wrote, for `kube down`.
- plan: the translation of an app's manifests into hostctl declarations (plan.Plan):
  pods, their member containers (hostctl YAML settings), named volumes and the data
  files ConfigMap and Secret volumes bind-mount.
- path: where a field sits in its document, as Kubernetes spells it
  (spec.template.spec.containers[0].lifecycle); every refusal names FILE:LINE, the
  document's index (1-based) and that path.
"""
