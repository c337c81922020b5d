"""Pure logic of the kube module: the app's name, the inline definition's text, the diff."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
import yaml

from ansible_collections.hostctl.hostctl.plugins.module_utils.kube import (
    KubeOptionError,
    app_of,
    definition_text,
    diff_of,
)


def test_the_app_is_the_src_files_stem_as_kube_play_names_it():
    assert app_of(dict(src='/srv/shop/shop.yaml', name=None)) == 'shop'
    assert app_of(dict(src='/srv/shop/shop.yaml', name='shop')) == 'shop'
    assert app_of(dict(src=None, name='hello')) == 'hello'


def test_a_name_that_is_not_the_src_files_is_refused():
    with pytest.raises(KubeOptionError, match='name web differs .*shop'):
        app_of(dict(src='/srv/shop.yaml', name='web'))


def test_a_definition_becomes_one_document_per_object():
    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'a'}}
    claim = {'apiVersion': 'v1', 'kind': 'PersistentVolumeClaim', 'metadata': {'name': 'd'}}
    assert list(yaml.safe_load_all(definition_text([pod, claim]))) == [pod, claim]
    assert yaml.safe_load(definition_text(pod)) == pod
    assert definition_text('kind: Pod') == 'kind: Pod\n'


class Change(object):
    diffs = [('/etc/hostctl/pods/a.yaml', '', 'ports: []\n')]


def test_the_diff_has_one_entry_per_file():
    assert diff_of(Change()) == [dict(before='', after='ports: []\n',
                                      before_header='/etc/hostctl/pods/a.yaml',
                                      after_header='/etc/hostctl/pods/a.yaml')]
