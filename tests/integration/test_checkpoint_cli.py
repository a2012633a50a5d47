"""checkpoint's and restore's refusals, before CRIU runs: they need no working CRIU, so
they run on any host (tests/checkpoint, in the CRIU guest, has the rest)."""


def test_parent_path_must_be_relative(pyrunc, running, tmp_path):
    r = pyrunc("checkpoint", "--image-path", str(tmp_path / "i"), "--parent-path", "/abs", running)
    assert r.code == 1
    assert r.err.strip() == "pyrunc: --parent-path must be relative (to --image-path)"
    assert pyrunc.state(running)["status"] == "running"


def test_a_missing_parent_path_is_refused(pyrunc, running, tmp_path):
    r = pyrunc("checkpoint", "--image-path", str(tmp_path / "i"), "--parent-path", "../none", running)
    assert r.code == 1
    assert r.err.strip() == f"pyrunc: --parent-path ../none: no such directory under {tmp_path / 'i'}"


def test_a_created_container_cannot_be_checkpointed(pyrunc, bundle, test_id, tmp_path):
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("checkpoint", "--image-path", str(tmp_path / "i"), test_id)
    assert r.code == 1
    assert r.err.strip() == f"pyrunc: cannot checkpoint container {test_id}: it is created, not running or paused"
    assert not (tmp_path / "i").exists()
    assert pyrunc.state(test_id)["status"] == "created"


def test_an_unknown_cgroups_mode_is_refused(pyrunc, running, tmp_path):
    r = pyrunc("checkpoint", "--image-path", str(tmp_path / "i"), "--manage-cgroups-mode", "loose", running)
    assert r.code == 1
    assert r.err.strip() == "pyrunc: --manage-cgroups-mode: invalid value 'loose' (soft, full, strict, ignore)"
    assert pyrunc.state(running)["status"] == "running"


def test_only_the_network_namespace_can_be_left_empty(pyrunc, running, tmp_path):
    r = pyrunc("checkpoint", "--image-path", str(tmp_path / "i"), "--empty-ns", "pid", running)
    assert r.code == 1
    assert r.err.strip() == "pyrunc: --empty-ns: namespace 'pid' is not supported (only network)"


def test_restore_needs_an_image_directory(pyrunc, bundle, test_id, tmp_path):
    bundle.write()
    r = pyrunc("restore", "-d", "--image-path", str(tmp_path / "none"), "-b", bundle.path, test_id)
    assert r.code == 1
    assert r.err.strip() == f"pyrunc: --image-path {tmp_path / 'none'}: no such directory"
    assert pyrunc("state", test_id).code != 0
    assert not (tmp_path / "none").exists()


def test_restore_of_a_directory_that_is_no_checkpoint(pyrunc, bundle, test_id, tmp_path):
    bundle.write()
    (tmp_path / "empty").mkdir()
    r = pyrunc("restore", "-d", "--image-path", str(tmp_path / "empty"), "-b", bundle.path, test_id)
    assert r.code == 1
    assert r.err.startswith(f"pyrunc: restore {test_id}: {tmp_path / 'empty'}/descriptors.json: ")
    assert r.err.strip().endswith("(not a checkpoint image?)")
    assert pyrunc("state", test_id).code != 0
    assert pyrunc("list", "-q").out == ""


def test_lazy_pages_is_refused_at_both_ends(pyrunc, running, bundle, tmp_path):
    why = "pyrunc: --lazy-pages is not supported: pyrunc runs neither CRIU's page server nor its lazy-pages daemon"
    r = pyrunc("checkpoint", "--lazy-pages", "--image-path", str(tmp_path / "i"), running)
    assert (r.code, r.err.strip()) == (1, why)
    assert not (tmp_path / "i").exists()
    assert pyrunc.state(running)["status"] == "running"
    (tmp_path / "img").mkdir()
    r = pyrunc("restore", "-d", "--lazy-pages", "--image-path", str(tmp_path / "img"), "-b", bundle.path, "other")
    assert (r.code, r.err.strip()) == (1, why)
    assert pyrunc("state", "other").code != 0
    with open(pyrunc.log) as f:
        assert "--lazy-pages is not supported" in f.read()
