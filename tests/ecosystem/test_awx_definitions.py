"""AWX as code (awx/controller_config.yml applied by awx/apply.yml), checked without an AWX server.

awx/apply.yml runs for real, against a stand-in awx.awx collection whose modules carry the argument specs of the
real awx.awx modules (read from the `ansible` package's awx.awx by importing each module with ControllerAPIModule
patched) and validate their parameters with AnsibleModule exactly as the real ones do, then record them. So every
module call the playbook makes is checked against the real spec (unknown options, types, choices, required and
mutually exclusive options), after Ansible's own templating (omit, !unsafe). The recorded parameters are then
checked against the rules AWX's API applies to credential types and survey specs, and cross-checked (names that
refer to each other, one job template per playbook).
"""
import importlib
import json
import os
import re
from pathlib import Path
from unittest import mock

import pytest
import yaml
from jinja2 import StrictUndefined, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ecosystem_helpers import REPO, run

AWX = REPO / "awx"
MODULES = ("credential_type", "credential", "execution_environment", "project", "inventory", "inventory_source",
           "job_template")
# Every playbook gets a job template (the FQCN twins multi_primary.yml etc. only import these).
PLAYBOOKS = {"multi-primary", "primary-remote", "ambient", "verify", "uninstall", "rotate-tokens", "report", "add-cluster",
             "decommission", "upgrade", "revision_tags"}
MESH_VARIABLES = {"istio_mesh_id", "istio_version", "istio_install_method", "istio_revision", "istio_charts"}
# The upgrade's stages set these for their runs: as survey answers (extra vars) they would win over them.
NOT_ASKED = {"upgrade": {"istio_version", "istio_revision", "istio_charts"}}
# AWX's own rules (awx/api/views JobTemplateSurveySpec, awx/main/fields CredentialType*Field).
SURVEY_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
                "integer": int, "float": (float, int)}
NAME_RE = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
FILE_KEY_RE = re.compile(r"^template(\.[a-zA-Z_]+[a-zA-Z0-9_]*)?$")
ENV_BLOCKLIST = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
                 "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
                 "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
                 "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH", "SUPERVISOR_WEB_CONFIG_PATH"}
INPUT_FIELD_KEYS = {"id", "type", "format", "choices", "label", "help_text", "multiline", "secret", "ask_at_runtime",
                    "default"}

FAKE_MODULE = '''#!/usr/bin/python
# Test stand-in: the real awx.awx {name} module's argument spec, validated by AnsibleModule, parameters recorded.
import json
import os

from ansible.module_utils.basic import AnsibleModule

SPEC = json.loads({spec!r})
KWARGS = json.loads({kwargs!r})


def main():
    module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True, **KWARGS)
    with open(os.environ["AWX_FAKE_LOG"], "a") as f:
        f.write(json.dumps({{"module": "{name}", "params": module.params}}) + "\\n")
    module.exit_json(changed=True, id=7, name=module.params.get("name"))


if __name__ == "__main__":
    main()
'''

FAKE_LOOKUP = '''# Test stand-in for awx.awx.controller_api: a project's playbooks/ endpoint lists $AWX_FAKE_PLAYBOOKS.
import json
import os

from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        assert len(terms) == 1 and terms[0].startswith("projects/") and terms[0].endswith("/playbooks/"), terms
        return [json.loads(os.environ["AWX_FAKE_PLAYBOOKS"])]
'''


class _Captured(Exception):
    pass


def real_spec(name):
    """argument_spec (with the controller auth options) and the AnsibleModule keyword arguments of awx.awx.<name>."""
    module = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{name}")
    from ansible_collections.awx.awx.plugins.module_utils.controller_api import ControllerModule

    captured = {}

    def capture(argument_spec=None, **kwargs):
        captured.update(spec=argument_spec, kwargs=kwargs)
        raise _Captured()

    with mock.patch.object(module, "ControllerAPIModule", capture), pytest.raises(_Captured):
        module.main()
    spec = dict(ControllerModule.AUTH_ARGSPEC, **captured["spec"])
    # env fallbacks are functions; the stand-in gets no auth options anyway.
    spec = {k: {a: v for a, v in opts.items() if a != "fallback"} for k, opts in spec.items()}
    kwargs = {k: v for k, v in captured["kwargs"].items()
              if k in ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")}
    return spec, kwargs


@pytest.fixture(scope="module")
def fake_awx(tmp_path_factory):
    root = tmp_path_factory.mktemp("awx") / "collections"
    base = root / "ansible_collections" / "awx" / "awx" / "plugins"
    (base / "modules").mkdir(parents=True)
    (base / "lookup").mkdir(parents=True)
    specs = {}
    for name in MODULES:
        spec, kwargs = real_spec(name)
        specs[name] = spec
        (base / "modules" / f"{name}.py").write_text(FAKE_MODULE.format(name=name, spec=json.dumps(spec),
                                                                        kwargs=json.dumps(kwargs)))
    (base / "lookup" / "controller_api.py").write_text(FAKE_LOOKUP)
    return root, specs


def apply(fake_awx, tmp_path, playbooks):
    """Run awx/apply.yml against the stand-in; return the recorded module calls and the playbook output."""
    root, dummy = fake_awx
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(f"[defaults]\ncollections_path = {root}\ncollections_scan_sys_path = false\n"
                   "stdout_callback = default\nretry_files_enabled = false\n")
    kubeconfig = tmp_path / "mesh.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    log = tmp_path / "calls.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CONTROLLER_", "TOWER_"))}
    env.update(ANSIBLE_CONFIG=str(cfg), AWX_FAKE_LOG=str(log), AWX_FAKE_PLAYBOOKS=json.dumps(sorted(playbooks)))
    # No inventory: the implicit localhost runs modules with ansible-playbook's own Python, as for users.
    proc = run("ansible-playbook", str(AWX / "apply.yml"),
               "-e", f"meshops_awx_kubeconfig_file={kubeconfig}", env=env, cwd=tmp_path)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return calls, proc.stdout, kubeconfig


def data():
    class Loader(yaml.SafeLoader):
        pass

    class Unsafe(str):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))
    return yaml.load((AWX / "controller_config.yml").read_text(), Loader=Loader), Unsafe  # noqa: S506 (SafeLoader)


def existing_playbooks():
    return {f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yml")}


@pytest.fixture(scope="module")
def applied(fake_awx, tmp_path_factory):
    """apply.yml with a project that has every planned playbook."""
    return apply(fake_awx, tmp_path_factory.mktemp("all"), {f"playbooks/{p}.yml" for p in PLAYBOOKS})


def by_module(calls, module):
    return [c["params"] for c in calls if c["module"] == module]


def check_survey(spec):
    """AWX's survey_spec validation (JobTemplateSurveySpec._validate_spec_data and the default checks)."""
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        assert isinstance(spec.get(field), kind), f"survey {field!r} must be {kind.__name__}"
    assert spec["spec"], "a survey needs questions"
    seen = set()
    for idx, q in enumerate(spec["spec"]):
        assert isinstance(q, dict), idx
        for field in ("type", "question_name", "variable", "required"):
            assert field in q, f"question {idx}: {field!r} missing"
            assert isinstance(q[field], bool if field == "required" else str), f"question {idx}: {field!r} type"
        assert NAME_RE.match(q["variable"]), q["variable"]
        assert q["variable"] not in seen, f"variable {q['variable']} twice"
        seen.add(q["variable"])
        assert q["type"] in SURVEY_TYPES, q["type"]
        if q.get("default") not in (None, ""):
            assert isinstance(q["default"], SURVEY_TYPES[q["type"]]), f"{q['variable']}: default type"
        for key in ("min", "max"):
            assert q.get(key) is None or isinstance(q[key], int), f"{q['variable']}: {key} must be an integer"
        if q["type"] in ("multiplechoice", "multiselect"):
            choices = q.get("choices")
            assert choices, f"{q['variable']}: choices required"
            choices = choices.splitlines() if isinstance(choices, str) else choices
            assert all(isinstance(c, str) for c in choices), f"{q['variable']}: choices must be strings"
            if "default" in q:
                defaults = q["default"].splitlines() if isinstance(q["default"], str) else q["default"]
                if q["type"] == "multiplechoice":
                    assert len(defaults) <= 1, f"{q['variable']}: one default"
                assert all(d in choices for d in defaults), f"{q['variable']}: default not among the choices"
        if not q["required"]:
            # AWX sends a non-null default as an extra var on every launch, overriding the inventory.
            assert q.get("default") is None, f"{q['variable']}: an optional question must have no default"
        if q["type"] in ("text", "textarea") and q.get("default") is not None:
            assert q.get("min") is None or len(q["default"]) >= q["min"]
            assert q.get("max") is None or len(q["default"]) <= q["max"]
    return seen


def check_credential_type(ct):
    """AWX's CredentialTypeInputField and CredentialTypeInjectorField rules."""
    inputs, injectors = ct["inputs"], ct["injectors"]
    assert set(inputs) <= {"fields", "required"}, inputs.keys()
    ids = []
    for field in inputs["fields"]:
        assert set(field) <= INPUT_FIELD_KEYS and {"id", "label"} <= set(field), field
        assert NAME_RE.match(field["id"]) and field["id"] != "tower", field["id"]
        assert field.get("type", "string") in ("string", "boolean")
        ids.append(field["id"])
    assert len(ids) == len(set(ids)), ids
    assert set(inputs.get("required", [])) <= set(ids)
    assert set(injectors) <= {"file", "env", "extra_vars"}, injectors.keys()
    files = list(injectors.get("file", {}))
    assert all(FILE_KEY_RE.match(k) for k in files), files
    for key in injectors.get("env", {}):
        assert NAME_RE.match(key) and not key.startswith("ANSIBLE_") and key not in ENV_BLOCKLIST, key
    # Every template must render with the declared inputs and the files it injects (StrictUndefined, sandboxed).
    namespace = {i: "EXAMPLE" for i in ids}
    filenames = type("Filenames", (), {})()
    if "template" in files:
        assert len(files) == 1, "multi-file syntax when injecting several files"
        filenames = "EXAMPLE_FILENAME"
    else:
        for key in files:
            setattr(filenames, key.split(".", 1)[1], "EXAMPLE_FILENAME")
    namespace["tower"] = type("Tower", (), {"filename": filenames})()
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for kind, entries in injectors.items():
        for key, template in entries.items():
            assert isinstance(template, str) and template.isascii(), (kind, key)
            try:
                env.from_string(template).render(namespace)
            except UndefinedError as e:
                pytest.fail(f"injector {kind}.{key} uses an undefined field: {e}")


def test_every_module_call_passes_the_real_awx_argument_specs(applied):
    calls, stdout, dummy = applied
    assert sorted({c["module"] for c in calls}) == sorted(MODULES), stdout[-3000:]
    # Nothing of the data is dropped on the way: every key of every item arrives as a module parameter.
    config, dummy = data()
    lists = {"credential_type": "meshops_awx_credential_types", "credential": "meshops_awx_credentials",
             "execution_environment": "meshops_awx_execution_environments", "project": "meshops_awx_projects",
             "inventory": "meshops_awx_inventories", "inventory_source": "meshops_awx_inventory_sources",
             "job_template": "meshops_awx_job_templates"}
    for module, key in lists.items():
        made = by_module(calls, module)
        assert [p["name"] for p in made] == [i["name"] for i in config[key]], module
        for item, params in zip(config[key], made):
            dropped = [k for k in item if params.get(k) is None]
            assert not dropped, f"{module} {item['name']}: apply.yml does not pass {dropped}"


def test_the_data_uses_only_options_the_modules_have(fake_awx):
    """The same, statically: every key in the data and every option in apply.yml is in the module's spec."""
    dummy, specs = fake_awx
    config, dummy = data()
    lists = {"meshops_awx_credential_types": "credential_type", "meshops_awx_credentials": "credential",
             "meshops_awx_execution_environments": "execution_environment", "meshops_awx_projects": "project",
             "meshops_awx_inventories": "inventory", "meshops_awx_inventory_sources": "inventory_source",
             "meshops_awx_job_templates": "job_template"}
    for key, module in lists.items():
        options = set(specs[module]) | {a for o in specs[module].values() for a in o.get("aliases", [])}
        for item in config[key]:
            assert set(item) <= options, f"{module}: {sorted(set(item) - options)} are not options of awx.awx.{module}"
            required = {k for k, o in specs[module].items() if o.get("required")}
            assert required <= set(item), f"{module} {item['name']}: {sorted(required - set(item))} required"
    play = yaml.safe_load((AWX / "apply.yml").read_text())
    for task in play[0]["tasks"]:
        module = next((k.split(".")[-1] for k in task if k.startswith("awx.awx.")), None)
        if module:
            unknown = set(task[f"awx.awx.{module}"]) - set(specs[module])
            assert not unknown, f"apply.yml {task['name']}: {sorted(unknown)} are not options of awx.awx.{module}"


def test_injectors_and_inventory_jinja_reach_awx_unrendered(applied):
    calls, dummy, kubeconfig = applied
    config, unsafe = data()
    for ct in config["meshops_awx_credential_types"]:
        for entries in ct["injectors"].values():
            assert all(isinstance(v, unsafe) for v in entries.values()), "injector Jinja must be !unsafe"
    (ct,) = by_module(calls, "credential_type")
    assert ct["name"] == "Kubeconfig and contexts" and ct["kind"] == "cloud"
    assert ct["injectors"] == {
        "file": {"template.kubeconfig": "{{ kubeconfig }}"},
        "env": {"K8S_AUTH_KUBECONFIG": "{{ tower.filename.kubeconfig }}", "KUBECONFIG": "{{ tower.filename.kubeconfig }}",
                "K8S_AUTH_CONTEXT": "{{ context }}"}}
    fields = {f["id"]: f for f in ct["inputs"]["fields"]}
    assert fields["kubeconfig"]["secret"] and fields["kubeconfig"]["multiline"] and ct["inputs"]["required"] == ["kubeconfig"]
    assert not fields["context"].get("secret") and "context" not in ct["inputs"]["required"]
    check_credential_type(ct)
    (inventory,) = by_module(calls, "inventory")
    assert inventory["variables"]["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert inventory["variables"]["istio_ca_dir"] == config["meshops_awx_ca_dir"]
    (credential,) = by_module(calls, "credential")
    # The file lookup strips the trailing newline.
    assert credential["inputs"] == {"kubeconfig": kubeconfig.read_text().rstrip("\n")}
    assert credential["update_secrets"] is False


def test_the_credential_is_not_logged(applied):
    dummy, stdout, kubeconfig = applied
    assert "contexts: []" not in stdout and "censored" in stdout, stdout[-3000:]


def test_one_job_template_per_playbook_with_a_valid_mesh_survey(applied):
    calls, dummy, dummy2 = applied
    jts = by_module(calls, "job_template")
    assert {Path(jt["playbook"]).stem for jt in jts} == PLAYBOOKS
    for jt in jts:
        assert jt["playbook"].startswith("playbooks/") and jt["playbook"].endswith(".yml")
        assert jt["survey_enabled"] is True
        asked = check_survey(jt["survey_spec"])
        not_asked = NOT_ASKED.get(Path(jt["playbook"]).stem, set())
        assert MESH_VARIABLES - not_asked <= asked, f"{jt['name']}: survey lacks {sorted(MESH_VARIABLES - not_asked - asked)}"
        assert not not_asked & asked, f"{jt['name']}: survey asks {sorted(not_asked & asked)}"
        methods = next(q for q in jt["survey_spec"]["spec"] if q["variable"] == "istio_install_method")
        assert methods["type"] == "multiplechoice"
        # Every model installs with either method (ambient too: istio-cni and ztunnel as IstioOperator components).
        assert methods["choices"] == ["helm", "istioctl"], jt["name"]
        # A slice would plan a different mesh (docs/awx.md).
        assert jt["job_slice_count"] == 1, jt["name"]
        assert jt["forks"] >= 20, jt["name"]
    for destructive in ("playbooks/uninstall.yml", "playbooks/decommission.yml"):
        jt = next(jt for jt in jts if jt["playbook"] == destructive)
        assert jt["job_type"] == "check" and jt["ask_job_type_on_launch"], f"{destructive} starts as a dry run"
    for one_cluster in ("playbooks/add-cluster.yml", "playbooks/decommission.yml"):
        jt = next(jt for jt in jts if jt["playbook"] == one_cluster)
        cluster = next(q for q in jt["survey_spec"]["spec"] if q["variable"] == "istio_cluster")
        assert cluster["required"] is True and "default" not in cluster, "the cluster must be chosen at launch"


def test_names_refer_to_defined_objects(applied):
    calls, dummy, dummy2 = applied
    names = {m: {p["name"] for p in by_module(calls, m)} for m in MODULES}
    for cred in by_module(calls, "credential"):
        assert cred["credential_type"] in names["credential_type"]
    for project in by_module(calls, "project"):
        assert project["default_environment"] in names["execution_environment"]
    for source in by_module(calls, "inventory_source"):
        assert source["inventory"] in names["inventory"] and source["source_project"] in names["project"]
    for jt in by_module(calls, "job_template"):
        assert jt["project"] in names["project"] and jt["inventory"] in names["inventory"]
        assert jt["execution_environment"] in names["execution_environment"]
        assert set(jt["credentials"]) <= names["credential"]


def test_job_templates_wait_for_their_playbook(fake_awx, tmp_path):
    """With this checkout's playbooks only, job templates for playbooks still to come are skipped and listed."""
    present = existing_playbooks()
    calls, stdout, dummy = apply(fake_awx, tmp_path, present)
    made = {jt["playbook"] for jt in by_module(calls, "job_template")}
    assert made == {f"playbooks/{p}.yml" for p in PLAYBOOKS} & present
    missing = sorted(f"playbooks/{p}.yml" for p in PLAYBOOKS if f"playbooks/{p}.yml" not in present)
    for playbook in missing:
        assert f"meshops.istio {Path(playbook).stem}" in stdout, stdout[-3000:]


def test_awx_directory_is_not_in_the_galaxy_tarball():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert "awx" in galaxy["build_ignore"]
