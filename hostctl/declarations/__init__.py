"""Declarations: what the user wants running, read from files into frozen dataclasses.

Glossary
- declaration: one file, NAME.yaml (or NAME.yml), describing one container. Its file
  stem is the container's name and its unit's name: app.yaml -> app.service.
- name: the declaration's file stem; a valid systemd unit-name prefix
  ([A-Za-z0-9:_.\\-]+, not starting with "."), also the runc container id.
- scope: system (root's declarations, system units) or user (a user's declarations,
  units of that user's systemd manager).
- search path: the directories looked in for declarations of one scope, highest
  priority first; the first file with a given name wins, lower ones are shadowed.
- setting: one top-level key of a declaration (image, command, env, ...), described
  once in settings.SETTINGS with its type, default, help and where it maps.
- raw section: the `unit`, `service` and `install` settings, systemd directives copied
  into the generated unit's [Unit], [Service] and [Install] sections.
- Container: the validated declaration (model.Container), the single input of unit
  rendering and of the launcher.
- where: the FILE:LINE:KEY a DeclarationError points at.
- pod: containers sharing network, IPC and UTS namespaces, declared by NAME.pod or
  pods/NAME.yaml (pod_file.Pod, settings in pod_settings.POD_SETTINGS); its members
  name it with the container setting `pod`.
"""
