"""Losing a machine half-way: a two-node Ray cluster simulated on this machine (ray.cluster_utils),
one node removed while both stylize; its unit is redone on the other and the output is whole."""

import logging

from pathlib import Path

import av
import pytest

from realtime.io.synthetic import write_clip
from realtime.jobs.video import VideoJob

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, node
    ray.shutdown()
    cluster.shutdown()


def _ancestors(pid: int) -> set[int]:
    """The process ids above ``pid`` (Linux: the parent field of /proc/PID/stat)."""
    out = set()
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        out.add(pid)
    return out


def test_a_machine_lost_half_way_has_its_unit_redone_on_another(two_nodes, cfg_factory, tmp_path):
    from realtime.cluster.runner import ClusterRun

    cluster, node = two_nodes
    src = tmp_path / "film.mp4"
    write_clip(src, frames=96, width=96, height=64, fps=24, audio=True, gop=24)
    out = tmp_path / "film-out.mp4"
    lost = []

    raylet = node.all_processes["raylet"][0].process.pid

    def on_that_node(run, actor) -> bool:  # a worker process is a child of its node's raylet
        pid = run.pool.pids.get(id(actor))
        return pid is not None and raylet in _ancestors(pid)

    def lose_a_node(run, actor, task):
        if lost:
            return
        if run.pool.starting:  # the first unit: let the other worker finish loading (units are quick)
            ray.wait(list(run.pool.starting), num_returns=len(run.pool.starting), timeout=60)
        if on_that_node(run, actor):  # a unit handed to the other machine: that machine goes away
            lost.append(task.unit.name)
            cluster.remove_node(node)

    cfg = cfg_factory(**{"cluster.enabled": True, "cluster.segment_s": 1.0, "cluster.worker_cpus": 1, "video.size": 48})
    res = ClusterRun(cfg, VideoJob(inputs=(str(src),), styles=("mosaic",), output=str(out), progress=False),
                     on_dispatch=lose_a_node).execute()
    assert lost and res.workers == 2
    assert res.inputs[0].status == "done" and res.retried == 1
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [f.pts for f in b.decode(video=0)] == [f.pts for f in a.decode(video=0)]
    assert ray.cluster_resources().get("CPU") == 1.0  # the run went on with the one machine left
