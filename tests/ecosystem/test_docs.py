"""The collection as `ansible-doc` shows it, from the Galaxy tarball installed alone (plus kubernetes.core): every
module, filter and role renders, and every module's EXAMPLES are tasks that its documented options accept (names,
choices, suboptions) and that read only keys its RETURN documents from what they register. sanity's validate-modules
compares DOCUMENTATION with the argument spec; nothing else reads EXAMPLES."""
import json
import os
import re

import pytest
import yaml

from ecosystem_helpers import REPO, run, venv_collections

MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTERS = sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.yml"))
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir())
# Keys every module result has, whatever its RETURN says.
COMMON_RESULT_KEYS = {"changed", "failed", "msg", "diff", "skipped", "warnings"}


@pytest.fixture(scope="module")
def doc_env(installed, ansible_env):
    return dict(ansible_env, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(installed), str(venv_collections().parent)]))


@pytest.fixture(scope="module")
def module_docs(doc_env):
    out = run("ansible-doc", "--json", "-t", "module", *("meshops.istio." + m for m in MODULES), env=doc_env).stdout
    return json.loads(out)


def test_every_module_filter_and_role_renders(doc_env, module_docs):
    assert sorted(module_docs) == ["meshops.istio." + m for m in MODULES]
    text = run("ansible-doc", "-t", "module", *("meshops.istio." + m for m in MODULES), env=doc_env).stdout
    for name in MODULES:
        assert "meshops.istio.%s" % name in text and module_docs["meshops.istio." + name]["examples"].strip(), name
    filters = json.loads(run("ansible-doc", "--json", "-t", "filter", *("meshops.istio." + f for f in FILTERS), env=doc_env).stdout)
    for name in FILTERS:
        doc = filters["meshops.istio." + name]
        assert doc["doc"]["description"] and doc["examples"].strip() and doc["return"], name
    roles = run("ansible-doc", "-t", "role", "-l", "meshops.istio", env=doc_env).stdout
    listed = re.findall(r"^meshops\.istio\.([a-z_]+):", roles, re.M)
    assert listed == ROLES, "every role documents its entry points in meta/argument_specs.yml"


def option_problems(args, options, where):
    """What in a task's module arguments its documented options do not accept."""
    problems = []
    names = dict((name, name) for name in options)
    names.update((alias, name) for name, spec in options.items() for alias in spec.get("aliases") or [])
    for key, value in (args or {}).items():
        if key not in names:
            problems.append("%s: unknown option %s" % (where, key))
            continue
        spec = options[names[key]]
        templated = isinstance(value, str) and "{{" in value
        if spec.get("choices") and not templated and not isinstance(value, (list, dict)) and value not in spec["choices"]:
            problems.append("%s: %s=%r not in %s" % (where, key, value, spec["choices"]))
        if spec.get("suboptions"):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    problems += option_problems(item, spec["suboptions"], "%s.%s[%d]" % (where, key, i))
    return problems


def read_keys(tasks, register):
    """The keys later tasks read from a registered result: `<register>.key` or `<register>['key']`."""
    def strings(value):
        if isinstance(value, dict):
            return [s for k, v in value.items() for s in strings(k) + strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    text = "\n".join(strings(tasks))
    return set(re.findall(r"\b%s\.([A-Za-z_]\w*)" % re.escape(register), text)) | \
        set(re.findall(r"\b%s\[['\"](\w+)['\"]\]" % re.escape(register), text))


@pytest.mark.parametrize("module", MODULES)
def test_examples_use_only_documented_options_and_return_values(module, module_docs):
    tasks = yaml.safe_load(module_docs["meshops.istio." + module]["examples"])
    assert isinstance(tasks, list) and tasks, "EXAMPLES is a list of tasks"
    problems, calls = [], 0
    for i, task in enumerate(tasks):
        assert isinstance(task, dict) and task.get("name"), "task %d has a name" % i
        for key, args in task.items():
            if not key.startswith("meshops.istio."):
                continue
            calls += 1
            doc = module_docs.get(key)
            if doc is None:
                problems.append("task %d calls %s, which is not a module of the collection" % (i, key))
                continue
            problems += option_problems(args, doc["doc"]["options"], "task %d (%s)" % (i, task["name"]))
            required = [n for n, spec in doc["doc"]["options"].items() if spec.get("required")]
            problems += ["task %d: required option %s missing" % (i, n) for n in required if n not in (args or {})]
            if task.get("register"):
                unknown = read_keys(tasks[i + 1:], task["register"]) - set(doc["return"] or {}) - COMMON_RESULT_KEYS
                problems += ["task %d: later tasks read %s.%s, which RETURN does not document" % (i, task["register"], k) for k in sorted(unknown)]
    assert calls, "the examples call the module"
    assert problems == []


def test_the_checker_catches_a_bad_example():
    options = {"network": {"type": "str", "required": True}, "kind": {"type": "str", "choices": ["service", "gateway_api"]},
               "consumers": {"type": "list", "suboptions": {"name": {"type": "str"}}}}
    assert option_problems({"netwrk": "n1", "kind": "ingress", "consumers": [{"name": "c1", "ctx": "x"}]}, options, "t") == [
        "t: unknown option netwrk", "t: kind='ingress' not in ['service', 'gateway_api']", "t.consumers[0]: unknown option ctx"]
    assert read_keys([{"debug": {"msg": "{{ ew.address }} {{ ew['port'] }}"}}], "ew") == {"address", "port"}
