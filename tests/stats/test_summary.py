"""The Summary encoder, byte for byte, on a tiny synthetic snapshot."""

from __future__ import annotations

from pykubelet.stats import encode_summary
from pykubelet.stats.types import (
    ContainerSample,
    CpuSample,
    InterfaceSample,
    MemorySample,
    NetworkSample,
    NodeSample,
    PodSample,
    Snapshot,
)

T = 1_700_000_000.9  # 2023-11-14T22:13:20Z; metav1.Time drops the fraction

GOLDEN = """{
 "node": {
  "nodeName": "n<1>",
  "startTime": "2023-11-14T22:13:20Z",
  "cpu": {
   "time": "2023-11-14T22:13:20Z",
   "usageCoreNanoSeconds": 10
  },
  "memory": {
   "time": "2023-11-14T22:13:20Z",
   "usageBytes": 3,
   "workingSetBytes": 2,
   "rssBytes": 1,
   "pageFaults": 0,
   "majorPageFaults": 0
  }
 },
 "pods": [
  {
   "podRef": {
    "name": "p",
    "namespace": "ns",
    "uid": "u"
   },
   "startTime": "2023-11-14T22:13:20Z",
   "containers": [
    {
     "name": "c",
     "startTime": "2023-11-14T22:13:20Z",
     "cpu": {
      "time": "2023-11-14T22:13:20Z",
      "usageNanoCores": 5,
      "usageCoreNanoSeconds": 7
     },
     "memory": {
      "time": "2023-11-14T22:13:20Z",
      "availableBytes": 6,
      "usageBytes": 5,
      "workingSetBytes": 4,
      "rssBytes": 0,
      "pageFaults": 1,
      "majorPageFaults": 2
     }
    }
   ],
   "network": {
    "time": "2023-11-14T22:13:20Z",
    "name": "",
    "interfaces": [
     {
      "name": "wlan0",
      "rxBytes": 1,
      "rxErrors": 2,
      "txBytes": 3,
      "txErrors": 4
     }
    ]
   }
  }
 ]
}"""


def _snap() -> Snapshot:
    wlan = InterfaceSample(
        name="wlan0", rx_bytes=1, rx_packets=9, rx_errors=2, rx_dropped=9,
        tx_bytes=3, tx_packets=9, tx_errors=4, tx_dropped=9,
    )  # fmt: skip
    ctr = ContainerSample(
        name="c",
        start_time=T,
        cpu=CpuSample(time=T, usage_core_ns=7, usage_nano_cores=5),
        memory=MemorySample(
            time=T, usage_bytes=5, working_set_bytes=4, page_faults=1, major_page_faults=2,
            limit_bytes=10,
        ),
    )  # fmt: skip
    pod = PodSample(
        name="p", namespace="ns", uid="u", start_time=T, containers=(ctr,),
        network=NetworkSample(time=T, interfaces=(wlan,)),
    )  # fmt: skip
    node = NodeSample(
        node_name="n<1>",
        boot_time=T,
        cpu=CpuSample(time=T, usage_core_ns=10),
        memory=MemorySample(time=T, usage_bytes=3, working_set_bytes=2, rss_bytes=1),
    )
    return Snapshot(time=T, node=node, pods=(pod,))


def test_summary_bytes() -> None:
    body = encode_summary(_snap())
    assert body == GOLDEN.replace("n<1>", "n\\u003c1\\u003e").encode()


def test_summary_without_pods_is_an_empty_list() -> None:
    snap = Snapshot(time=T, node=NodeSample(node_name="n", boot_time=T))
    assert encode_summary(snap) == (
        b'{\n "node": {\n  "nodeName": "n",\n  "startTime": "2023-11-14T22:13:20Z"\n },\n'
        b' "pods": []\n}'
    )


def test_encoder_matches_json_dumps_indent_one() -> None:
    import json

    from pykubelet.stats.summary import _indent

    doc = {
        "a": [],
        "b": {},
        "c": [1, {"d": 'é"\\ \n\t\u0001'}, [[]]],
        "e": {"f": {"g": 0}},
        "h": -5,
    }
    out: list[str] = []
    _indent(doc, "", out)
    assert "".join(out) == json.dumps(doc, indent=1, ensure_ascii=False)


def test_go_escapes_in_names() -> None:
    snap = Snapshot(time=T, node=NodeSample(node_name="a&b<c>\u2028", boot_time=T))
    assert b'"nodeName": "a\\u0026b\\u003cc\\u003e\\u2028"' in encode_summary(snap)
