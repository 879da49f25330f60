"""The DynamoDB client's data loader answers as botocore's own does, without listing every service."""

from __future__ import annotations

import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import create_loader

from llm_gateway.state.dynamodb import one_service_loader


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"])
def test_models_are_botocore_s_own(type_name):
    assert one_service_loader(None).load_service_model("dynamodb", type_name) == \
        create_loader(None).load_service_model("dynamodb", type_name)


def test_an_explicit_api_version_and_another_service_load_the_same():
    ours, theirs = one_service_loader(None), create_loader(None)
    assert ours.load_service_model("dynamodb", "service-2", "2012-08-10") == \
        theirs.load_service_model("dynamodb", "service-2", "2012-08-10")
    assert ours.load_service_model("sts", "service-2") == theirs.load_service_model("sts", "service-2")


def test_an_unknown_service_is_refused_as_botocore_refuses_it():
    with pytest.raises(UnknownServiceError) as ours:
        one_service_loader(None).load_service_model("no-such-service", "service-2")
    with pytest.raises(UnknownServiceError) as theirs:
        create_loader(None).load_service_model("no-such-service", "service-2")
    assert str(ours.value) == str(theirs.value)


def test_a_data_path_is_searched_as_botocore_searches_it(tmp_path):
    ours, theirs = one_service_loader(str(tmp_path)), create_loader(str(tmp_path))
    assert ours.search_paths == theirs.search_paths
