"""Classes of bad input the cluster (or the registry) would refuse later are refused at config time (#16)."""

from __future__ import annotations

import pytest

from tests.test_config import problems_for, web


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("Web:1.4.2", "repository names are lower case"),
        ("web :1.4.2", "it contains whitespace"),
        ("web:1.4.2\n", "it contains whitespace"),
        ("", "it is empty"),
        ("web:1.4.2@sha256:5b1e", "it is not of the form [registry/]name[:tag][@sha256:digest]"),
        ("web:" + "1" * 129, "it is not of the form [registry/]name[:tag][@sha256:digest]"),
    ],
)
def test_an_image_reference_no_registry_would_serve_is_refused(image, why):
    problems = problems_for(lambda values, secret_keys: web(values).update(image=image))
    [problem] = [p for p in problems if p.startswith("platform:services[0].image:")]
    assert f"is not a valid image reference: {why}" in problem


@pytest.mark.parametrize(
    "mutate",
    [
        lambda values: web(values).update(name="web\n"),
        lambda values: web(values)["env"].update({"LOG_LEVEL\n": "debug"}),
        lambda values: web(values)["secretEnv"].update(SESSION_KEY="web-session-key\n"),
        lambda values: web(values).update(serviceAccount={"awsRoleArn": "arn:aws:iam::123456789012:role/web\n"}),
    ],
    ids=["name", "env name", "secret key", "role arn"],
)
def test_a_trailing_newline_never_passes_a_name_key_or_arn_check(mutate):
    problems = problems_for(lambda values, secret_keys: mutate(values))
    assert any(p.startswith("platform:services[0].") for p in problems), problems


@pytest.mark.parametrize(
    ("mutate", "where", "why"),
    [
        (lambda values: web(values).update(replicas=True), "services[0].replicas", "true is a boolean where a whole number is expected"),
        (lambda values: values["quota"].update(pods=False), "quota.pods", "false is a boolean where a whole number is expected"),
        (lambda values: web(values).update(replicas=3_000_000_000), "services[0].replicas", "3000000000 is beyond the largest number Kubernetes stores (2147483647)"),
    ],
    ids=["replicas true", "pods false", "replicas beyond int32"],
)  # fmt: skip
def test_counts_are_whole_numbers_kubernetes_can_store(mutate, where, why):
    problems = problems_for(lambda values, secret_keys: mutate(values))
    assert problems == [f"platform:{where}: {why}; write a number" if "boolean" in why else f"platform:{where}: {why}"]


def all_patterns() -> dict[str, list[str]]:
    import stack_config
    from components.config_base import _models_in

    seen, patterns = set(), {}

    def walk(model) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            for rule in field.metadata:
                if getattr(rule, "pattern", None):
                    patterns.setdefault(rule.pattern, []).append(f"{model.__name__}.{name}")
            for inner in _models_in(field.annotation):
                walk(inner)

    walk(stack_config.StackConfig)
    return patterns


def test_every_format_of_the_stack_files_has_plain_words_for_its_errors():
    from components.config_base import PATTERN_WORDS

    patterns = all_patterns()
    assert len(patterns) > 10
    assert {pattern: fields for pattern, fields in patterns.items() if pattern not in PATTERN_WORDS} == {}


def test_a_format_error_never_shows_a_regex():
    problems = problems_for(lambda values, secret_keys: (web(values).update(name="Web"), values["quota"].update(requestsCpu="two")))
    assert any(p.startswith("platform:services[0].name: not lower-case letters") for p in problems)
    assert any(p.startswith("platform:quota.requestsCpu: not a Kubernetes quantity") for p in problems)
    assert not [p for p in problems if "^" in p or "should match pattern" in p]


def test_a_long_value_is_shortened_in_its_message():
    problems = problems_for(lambda values, secret_keys: values["quota"].update(requestsCpu="x" * 500))
    [problem] = [p for p in problems if p.startswith("platform:quota.requestsCpu:")]
    assert "x" * 100 not in problem and problem.endswith("...')")


def test_a_malformed_prod_digest_is_named_as_such_with_a_working_fix():
    def shorten_digest(values, secret_keys):
        image = web(values)["image"]
        web(values)["image"] = image[:-1]  # 63 hex digits

    [problem] = [p for p in problems_for(shorten_digest, "prod") if p.startswith("platform:services[0].image:")]
    assert "has a malformed digest" in problem
    assert "@sha256@sha256" not in problem and "--path 'services[0].image' 'web@sha256:<digest>'" in problem


def test_a_credential_in_a_platform_setting_is_not_advised_into_a_secret_of_that_setting():
    def url_with_password(values, secret_keys):
        values["monitoring"]["runbookUrlTemplate"] = "https://deploy:s3cr3t-Pa55word@runbooks.example.com/{alert}"

    [problem] = [p for p in problems_for(url_with_password, "staging") if p.startswith("platform:monitoring.runbookUrlTemplate:")]
    assert "Take the credential out of this setting: the platform reads it as plain config only" in problem
    assert "s3cr3t" not in problem
