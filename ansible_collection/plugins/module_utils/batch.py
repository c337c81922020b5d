"""Several containers in one task: the container module's `containers` list.

Each element takes the module's own options; an option the task sets applies to every
element that does not set it. Every element is checked as a task of its own would be
(types, choices, required options, unknown keys) before any of them is acted on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator


class BatchError(ValueError):
    """An element of `containers` is not a valid set of the module's options."""


def element_params(task_params, elements, spec, required_if=None):
    """The validated parameters of each of ELEMENTS (dicts of options), with the task's
    own options (TASK_PARAMS, `containers` left out) where an element does not set them.

    SPEC is the module's argument spec for one container (without `containers`);
    REQUIRED_IF its required_if rules. Raises BatchError naming the element (index and
    name) and what is wrong with it; a name given twice is an error too.
    """
    inherited = dict((key, value) for key, value in task_params.items()
                     if value is not None and key != 'containers' and key in spec)
    validator = ArgumentSpecValidator(spec, required_if=required_if)
    validated, seen = [], {}
    for index, element in enumerate(elements):
        where = 'containers[%d]' % index
        if not isinstance(element, dict):
            raise BatchError('%s: each element is a dictionary of options, not %r'
                             % (where, element))
        if element.get('name'):
            where = '%s (%s)' % (where, element['name'])
        merged = dict(inherited)
        merged.update(element)
        result = validator.validate(merged)
        if result.error_messages:
            raise BatchError('%s: %s' % (where, '; '.join(result.error_messages)))
        params = result.validated_parameters
        key = (params['scope'], params.get('owner'), params['name'])
        if key in seen:
            raise BatchError('%s: %s is also containers[%d]'
                             % (where, params['name'], seen[key]))
        seen[key] = index
        validated.append(params)
    return validated
