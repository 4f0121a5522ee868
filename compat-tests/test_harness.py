"""The harness itself: the broker answers ApiVersions and Metadata on its bootstrap address."""
from harness import kwire


def test_api_versions_handshake(broker):
    apis = broker.api_versions()
    assert 18 in apis, apis                       # ApiVersions
    for key in (0, 1, 2, 3, 19, 20):              # Produce Fetch ListOffsets Metadata CreateTopics DeleteTopics
        assert key in apis, f"api key {key} not advertised: {apis}"
    assert broker.kind in ("sluice", "kafka")
    assert broker.bootstrap.startswith("127.0.0.1:")


def test_metadata_lists_this_broker(broker):
    assert kwire.metadata_broker_count(broker.host, broker.port) == 1
