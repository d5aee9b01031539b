"""No model lost in training (issue 23, items 1-5): one run per served folder, the served model switched
in one step (a crash at any step or a reader meanwhile sees one whole model), a full disk an error of
the run, reports that come and go with their model, a quality gate, and Ctrl-C a plain message.

The training runs here are the Whisper path with the fake encoder of ``test_whisper_predictor`` on
60 synthetic clips of three corpora: a few seconds each.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import audio_factory
from conftest import run_train
from ser_core.inference import artifacts, embedding
from test_whisper_predictor import FakeEncoder

REPO = Path(__file__).resolve().parents[1]
SERVED = ("model.keras", "config.json", "metrics.json", "history.json", "split.csv")
CORPORA = ("tess", "nemo", "turev")

# publish.py loaded on its own: ser_core.training's package start-up imports TensorFlow (seconds per process)
_LOAD_PUBLISH = """
import importlib.util
spec = importlib.util.spec_from_file_location("publish", "ser_core/training/publish.py")
publish = importlib.util.module_from_spec(spec)
spec.loader.exec_module(publish)
"""


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("corpora")
    audio_factory.make_tess(data / "tess", seconds=0.5)
    audio_factory.make_nemo(data / "nemo", seconds=0.5)
    audio_factory.make_turev(data / "turev", seconds=0.5)
    return data


@pytest.fixture(scope="module")
def distinct_corpora(tmp_path_factory) -> Path:
    """``corpora`` with every clip's bytes its own (a tone of its own pitch): the caches key a clip by its
    bytes, so 60 copies of one tone are one cached embedding."""
    data = tmp_path_factory.mktemp("distinct_corpora")
    paths = (audio_factory.make_tess(data / "tess", seconds=0.5) + audio_factory.make_nemo(data / "nemo", seconds=0.5)
             + audio_factory.make_turev(data / "turev", seconds=0.5))
    for index, path in enumerate(paths):
        audio_factory.write_audio(path, audio_factory.tone(150 + 5 * index, 0.5))
    return data


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.fixture()
def fake_whisper(monkeypatch) -> FakeEncoder:
    from ser_core.inference import whisper_front

    encoder = FakeEncoder()
    monkeypatch.setattr(embedding, "load_encoder", lambda *args, **kwargs: encoder)
    monkeypatch.setattr(artifacts, "load_whisper_encoder", lambda config: encoder)
    # training reaches load_encoder through whisper_front's per-process caches: an earlier test may
    # have filled them with the real encoder
    for cached in (whisper_front.front_end_encoder, whisper_front.serving_encoder):
        cached.cache_clear()
    yield encoder
    for cached in (whisper_front.front_end_encoder, whisper_front.serving_encoder):
        cached.cache_clear()


def whisper_argv(data: Path, served: Path, run_dir: Path, cache: Path, corpora=CORPORA, *extra: str) -> list[str]:
    return ["--front-end", "whisper", "--data", *(f"{name}={data / name}" for name in corpora), "--workers", "1",
            "--cache-dir", str(cache), "--artifacts", str(served), "--run-dir", str(run_dir), *extra]


def reader_view(served: Path) -> dict[str, bytes]:
    """The served model's files as a reader reads them: ``artifacts/current`` resolved once when it is
    there (the layout's contract, ``artifacts.served_model_dir``), else the top of the folder."""
    folder = Path(os.path.realpath(served / "current")) if (served / "current").is_symlink() else served
    return {name: (folder / name).read_bytes() for name in SERVED if (folder / name).is_file()}


def served_files(served: Path) -> dict[str, bytes]:
    """The files at the paths a person sees, ``artifacts/model.keras`` ..."""
    return {name: (served / name).read_bytes() for name in SERVED if (served / name).is_file()}


def model_file(served: Path, name: str) -> Path:
    """Where the served model's file really is (``artifacts/models/<id>/...`` once a run has published)."""
    return Path(os.path.realpath(served / "current" / name)) if (served / "current").is_symlink() else served / name


def staging_leftovers(served: Path) -> list[str]:
    return sorted(str(path.relative_to(served)) for path in served.rglob(".*")
                  if path.name.startswith((".incoming-", ".outgoing-", ".link-", ".publish")))


@pytest.fixture()
def served_model(corpora, shared_cache, fake_whisper, tmp_path) -> Path:
    """A served folder with a model trained on the three corpora (its files: ``served_files``)."""
    served = tmp_path / "artifacts"
    assert run_train(whisper_argv(corpora, served, tmp_path / "first_run", shared_cache)) == 0
    return served


# ----------------------------------------------------------------------------------- 1. two runs at once


@pytest.mark.slow
def test_a_second_run_on_the_same_folder_stops_naming_the_first_and_no_model_is_lost(
        served_model, corpora, shared_cache, tmp_path, monkeypatch, capsys):
    """Reproduces item 1: a run started while another works on the same folder. Before: both exit 0 and
    the model served before them is gone from the folder and from previous/."""
    import train

    original, before = train.publish, served_files(served_model)
    second: dict = {}

    def second_run_starts_meanwhile(out, folder):
        if second:  # before the fix the second run got here too: it starts no third
            return original(out, folder)
        second["code"] = None
        second["code"] = train.main(whisper_argv(corpora, served_model, tmp_path / "second_run", shared_cache,
                                                 ("tess", "nemo")))
        second["err"] = capsys.readouterr().err
        return original(out, folder)

    monkeypatch.setattr(train, "publish", second_run_starts_meanwhile)
    assert run_train(whisper_argv(corpora, served_model, tmp_path / "first_run_again", shared_cache, CORPORA,
                                  "--seed", "1")) == 0
    assert second["code"] == 2
    assert f"another train.py run is using {served_model} (pid {os.getpid()}, started " in second["err"]
    assert not (tmp_path / "second_run").exists()  # stopped before any work
    assert {name: (served_model / "previous" / name).read_bytes() for name in SERVED} == before


@pytest.mark.slow
def test_the_lock_names_a_live_holder_and_dies_with_it(tmp_path, capsys):
    import train

    holder = subprocess.Popen(
        [sys.executable, "-c", _LOAD_PUBLISH + textwrap.dedent("""
            import sys, time
            from pathlib import Path
            with publish.artifacts_lock(Path(sys.argv[1])):
                print("held", flush=True)
                time.sleep(120)
            """), str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert train.main(["--restore-previous", "--artifacts", str(tmp_path)]) == 2
        error = capsys.readouterr().err
        assert f"(pid {holder.pid}, started " in error and " -c " in error
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock
        holder.wait()
    assert train.main(["--restore-previous", "--artifacts", str(tmp_path)]) == 2
    assert "no previous model" in capsys.readouterr().err  # not "another train.py run"


# ----------------------------------------------------------------------------------- 2. atomic publishing

_KILLED_PUBLISHES = _LOAD_PUBLISH + textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path

    run, base, layout = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    names = ("model.keras", "config.json", "metrics.json", "history.json", "split.csv")

    def model(folder, tag):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_text(f"{tag} {name}")
        return folder

    def fresh_served(index):
        served = base / f"served_{index}"
        if layout == "committed":  # a fresh clone: the model files at the top of artifacts/
            model(served, "old")
        else:  # the old model published by an earlier run, with a model before it as previous
            publish.publish(model(base / "older_run", "older"), served)
            publish.publish(model(base / "old_run", "old"), served)
        return served

    def killed_at(step):
        calls = [0]

        def counting(function):
            def wrapper(*args, **kwargs):
                calls[0] += 1
                if calls[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind: a power cut, kill -9
                return function(*args, **kwargs)
            return wrapper

        for name in ("rename", "replace"):
            setattr(os, name, counting(getattr(os, name)))
        publish.publish(run, served)

    step = 1
    while True:
        served = fresh_served(step)
        child = os.fork()
        if child == 0:
            killed_at(step)
            os._exit(0)  # the publish finished before the step: every step has been tried
        _, status = os.waitpid(child, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        print(json.dumps({"step": step, "served": str(served), "killed": killed}), flush=True)
        if not killed:
            break
        step += 1
""")


def _model_files(folder: Path, tag: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in SERVED:
        (folder / name).write_text(f"{tag} {name}")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["committed", "published"])
def test_a_publish_killed_at_any_step_serves_one_whole_model_after_recovery(layout, tmp_path):
    """Reproduces item 2: the publishing process killed (SIGKILL) before each of its renames in turn
    (os.rename, os.replace: every step that changes what is where). Before: killed after its first
    os.replace, the folder served the new model.keras with the old config.json, previous/ was missing and
    --restore-previous refused. Now: a reader sees all of the old model or all of the new one, at once and
    after the next run's recovery; the replaced one is then previous and can be restored, and no staging
    folder is left."""
    old, new = {name: f"old {name}".encode() for name in SERVED}, {name: f"new {name}".encode() for name in SERVED}
    _model_files(tmp_path / "new_run", "new")
    script = subprocess.run([sys.executable, "-c", _KILLED_PUBLISHES, str(tmp_path / "new_run"), str(tmp_path),
                             layout], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr
    trials = [json.loads(line) for line in script.stdout.splitlines()]
    assert len(trials) > 3 and all(trial["killed"] for trial in trials[:-1]) and not trials[-1]["killed"]
    outcomes = []
    for trial in trials:
        served, step = Path(trial["served"]), trial["step"]
        killed_view = reader_view(served)
        assert killed_view in (old, new), f"killed before step {step} of {len(trials) - 1}: a mix {killed_view}"
        from ser_core.training.publish import recover, restore_previous

        recover(served)
        serving = reader_view(served)
        assert serving == killed_view, step  # recovery finishes or undoes, never changes what was served
        assert staging_leftovers(served) == [], step
        assert served_files(served) == serving, step  # the top-level paths too
        if serving == new:
            assert {name: (served / "previous" / name).read_bytes() for name in SERVED} == old, step
            assert restore_previous(served) and served_files(served) == old, step
        outcomes.append("new" if serving == new else "old")
    assert outcomes[0] == "old" and outcomes[-1] == "new"  # the switch is one of the steps: old before, new after
    assert outcomes == sorted(outcomes, key=["old", "new"].index)


def test_a_reader_during_publishes_never_sees_two_models_mixed(tmp_path):
    """Reproduces item 2's reader: a reader reading model.keras then config.json while the folder is
    republished 60 times. Before, each file was renamed in turn, so a reader could get one of each."""
    from ser_core.training.publish import publish

    served = tmp_path / "served"
    for tag in ("a", "b"):
        _model_files(tmp_path / tag, tag)
    publish(tmp_path / "a", served)
    seen: list[tuple[str, str]] = []
    gone = 0
    stop = threading.Event()

    def reader():
        nonlocal gone
        while not stop.is_set():
            folder = Path(os.path.realpath(served / "current")) if (served / "current").is_symlink() else served
            try:
                seen.append(((folder / "model.keras").read_text()[0], (folder / "config.json").read_text()[0]))
            except FileNotFoundError:  # the directory it resolved was pruned two publishes later
                gone += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for turn in range(60):
            publish(tmp_path / ("b" if turn % 2 == 0 else "a"), served)
    finally:
        stop.set()
        thread.join()
    assert seen and all(model == config for model, config in seen), {pair for pair in seen if pair[0] != pair[1]}
    assert {model for model, _ in seen} == {"a", "b"}
    assert gone < len(seen) / 10


def test_leftovers_of_a_run_killed_in_the_older_file_by_file_swap_are_recovered(tmp_path, capsys):
    """The state issue 23 found (the older publish killed after its first os.replace): model.keras new,
    config.json old, the old set only in .outgoing-<pid>. The next train.py start serves the old model
    whole again and removes the staging folders."""
    import train

    served = tmp_path / "artifacts"
    _model_files(served, "old")
    _model_files(served / ".outgoing-4242", "old")
    _model_files(served / ".incoming-4242", "new")
    os.replace(served / ".incoming-4242" / "model.keras", served / "model.keras")
    assert train.main(["--restore-previous", "--artifacts", str(served)]) == 2  # no previous: but recovered
    assert served_files(served) == {name: f"old {name}".encode() for name in SERVED}
    assert staging_leftovers(served) == []
    assert "served the model saved in .outgoing-4242 again" in capsys.readouterr().out


def test_the_committed_layout_is_served_until_a_run_publishes(tmp_path):
    """A fresh clone has no artifacts/current: the folder itself is the served model."""
    _model_files(tmp_path, "committed")
    assert artifacts.served_model_dir(tmp_path) == tmp_path
    assert served_files(tmp_path)["config.json"] == b"committed config.json"


# ----------------------------------------------------------------------------------- 3. a full disk


def _disk_fills_after(count: int):
    original, writes = artifacts.save_array, []

    def save_array(path, array):
        if len(writes) >= count:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        writes.append(path)
        return original(path, array)

    return save_array


@pytest.mark.slow
def test_a_full_disk_while_caching_embeddings_stops_the_run(served_model, distinct_corpora, fake_whisper, tmp_path,
                                                            monkeypatch, capsys):
    """Reproduces item 3: the embedding cache's disk fills after 40 of 60 clips. Before: the other 20 (all of
    TurEV) were "no embedding (OSError ...)" like bad audio and the run published a model of the 40 with exit 0."""
    before = served_files(served_model)
    monkeypatch.setattr(artifacts, "save_array", _disk_fills_after(40))
    assert run_train(whisper_argv(distinct_corpora, served_model, tmp_path / "run", tmp_path / "new_cache")) == 2
    error = capsys.readouterr().err
    assert "cannot write the embedding cache in" in error and "No space left on device" in error
    assert "nothing was replaced" in error and "Traceback" not in error
    assert served_files(served_model) == before and staging_leftovers(served_model) == []


@pytest.mark.slow
def test_a_full_disk_while_caching_cnn_features_stops_the_run(tiny_ravdess, tmp_path, monkeypatch, capsys):
    """Item 3 for the log-mel CNN's feature cache: the disk fills after 5 clips."""
    monkeypatch.setattr(artifacts, "save_array", _disk_fills_after(5))
    code = run_train(["--ravdess-dir", str(tiny_ravdess), "--epochs", "1", "--artifacts", str(tmp_path / "served"),
                      "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--workers", "1",
                      "--verbose", "0"])
    assert code == 2
    error = capsys.readouterr().err
    assert "cannot write the feature cache in" in error and "No space left on device" in error
    assert not (tmp_path / "run" / "artifacts").exists()


@pytest.mark.slow
def test_an_artifacts_folder_without_room_or_not_writable_is_refused_before_the_work(
        corpora, fake_whisper, tmp_path, monkeypatch, capsys):
    """Reproduces item 3's second half: before, a full or read-only artifacts folder failed with a traceback
    only after the whole run."""
    import shutil

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = whisper_argv(corpora, blocker / "artifacts", tmp_path / "run", tmp_path / "cache")
    assert run_train(argv) == 2
    assert "is not writable" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # refused before any embedding

    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=3_000_000))
    assert run_train(whisper_argv(corpora, tmp_path / "served", tmp_path / "run", tmp_path / "cache")) == 2
    error = capsys.readouterr().err
    assert "has 3 MB free; a run needs 52 MB there" in error and "Traceback" not in error
    assert not (tmp_path / "cache").exists()
    assert staging_leftovers(tmp_path / "served") == []


@pytest.mark.slow
def test_a_disk_that_fills_while_publishing_leaves_the_served_model_and_no_staging_folder(
        served_model, corpora, shared_cache, tmp_path, monkeypatch, capsys):
    """The disk fills while the new model is copied into the served folder: before, a traceback and a
    .incoming-* folder left behind (two such runs filled a disk)."""
    import shutil

    before, original, copies = served_files(served_model), shutil.copy2, []

    def copy_fills_the_disk(source, destination, **keywords):
        if ".incoming-" in str(destination):
            copies.append(destination)
            if len(copies) == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(destination))
        return original(source, destination, **keywords)

    monkeypatch.setattr(shutil, "copy2", copy_fills_the_disk)
    assert run_train(whisper_argv(corpora, served_model, tmp_path / "run", shared_cache, CORPORA, "--seed", "3")) == 2
    error = capsys.readouterr().err
    assert "No space left on device" in error and "nothing was replaced" in error and "Traceback" not in error
    assert served_files(served_model) == before and staging_leftovers(served_model) == []


# ----------------------------------------------------------------------------------- 4. reports and the gate


@pytest.mark.slow
def test_the_reports_the_app_shows_come_and_go_with_their_model(served_model, corpora, shared_cache, tmp_path):
    """Reproduces item 4's stale report: a leave-one-corpus-out report beside the served model (as in the
    committed folder), then a model trained on two corpora. Before, the app kept showing the old report
    (the sidebar's "51 %") for the new model."""
    from ser_core.app import support
    from ser_core.evaluation import loco_report

    legacy = tmp_path / "committed"  # the committed layout: model files and loco_whisper.json at the top
    legacy.mkdir()
    for name in (*SERVED, "loco_whisper.json"):
        (legacy / name).write_bytes(model_file(served_model, name).read_bytes())
    old_report = loco_report.load_loco_report(legacy)
    assert run_train(whisper_argv(corpora, legacy, tmp_path / "run", shared_cache, ("tess", "nemo"))) == 0
    config = json.loads((legacy / "config.json").read_text())
    report = loco_report.load_loco_report(legacy)
    assert report.model_name == config["model_name"] != old_report.model_name
    assert {corpus.name for corpus in report.corpora} == {"tess", "nemo"}
    assert support.new_setup_accuracy(legacy) == report.mean_of("strict_accuracy")
    # the committed copy went with its model to previous/; the top of the folder holds the new model's
    assert json.loads((legacy / "loco_whisper.json").read_text())["model_name"] == config["model_name"]
    assert json.loads((legacy / "previous" / "loco_whisper.json").read_text())["model_name"] == old_report.model_name

    assert run_train(["--restore-previous", "--artifacts", str(legacy)]) == 0
    assert loco_report.load_loco_report(legacy).model_name == old_report.model_name
    assert support.load_reports(legacy).model_name == old_report.model_name


@pytest.mark.slow
def test_a_far_worse_model_is_not_served_without_force(served_model, corpora, shared_cache, tmp_path, capsys):
    """Reproduces item 4's gate: the served model's leave-one-corpus-out UAR made 0.15 higher than what the
    new run scores on the same corpora. Before, any finished run replaced the served model."""
    config = json.loads((served_model / "config.json").read_text())
    argv = whisper_argv(corpora, served_model, tmp_path / "run", shared_cache)

    def served_scores(margin: float) -> None:
        config["loco"]["uar"] = {corpus: uar + margin for corpus, uar in new_uar.items()}
        artifacts.write_json(model_file(served_model, "config.json"), config)

    new_uar = config["loco"]["uar"]  # the same data and seed: the new run scores the same
    def served() -> tuple[str, dict[str, bytes]]:
        # which model directory is served, and its files: two runs on the same data within one second
        # write byte-identical files, so the files alone cannot tell that a new model was served
        return os.path.realpath(served_model / "current"), served_files(served_model)

    served_scores(0.15)
    before = served()
    assert run_train(argv) == 2
    error = capsys.readouterr().err
    assert "far worse than the one served" in error and "more than 0.10 lower" in error and "--force" in error
    assert served() == before and (tmp_path / "run" / "artifacts" / "model.keras").is_file()

    assert run_train([*argv, "--force"]) == 0
    assert served() != before

    served_scores(0.05)  # within the margin: served without asking
    before = served()
    assert run_train(argv) == 0 and served() != before


# ----------------------------------------------------------------------------------- 5. Ctrl-C


@pytest.mark.slow
def test_ctrl_c_says_nothing_was_replaced_without_a_traceback(served_model, corpora, shared_cache, tmp_path,
                                                              monkeypatch, capsys):
    """Reproduces item 5 in-process: Ctrl-C during the training. Before: a KeyboardInterrupt traceback."""
    from ser_core.training import whisper_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    before = served_files(served_model)
    monkeypatch.setattr(whisper_run, "served_files", interrupted)
    try:
        code = run_train(whisper_argv(corpora, served_model, tmp_path / "run", shared_cache))
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped train.main: a traceback on the terminal")
    assert code == 130
    error = capsys.readouterr().err
    assert "interrupted, nothing was replaced" in error and "Traceback" not in error
    assert served_files(served_model) == before and staging_leftovers(served_model) == []


_SLOW_RUN = textwrap.dedent("""
    import signal, sys, time
    # Ctrl-C as in a terminal's foreground: a suite started in the background (`pytest &`) hands its
    # children SIGINT ignored, and Python then installs no KeyboardInterrupt handler of its own
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, "tests")
    from test_whisper_predictor import FakeEncoder
    from ser_core.inference import artifacts, embedding
    import train

    encoder = FakeEncoder()
    embedding.load_encoder = lambda *args, **kwargs: encoder
    artifacts.load_whisper_encoder = lambda config: encoder
    real_embed = embedding.embed_waveform

    def slow_embed(*args, **kwargs):
        print("embedding", file=sys.stderr, flush=True)
        time.sleep(0.3)
        return real_embed(*args, **kwargs)

    embedding.embed_waveform = slow_embed
    sys.exit(train.main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_during_parallel_embedding(corpora, served_model, tmp_path):
    """Item 5 as a person meets it: SIGINT to the whole process group (what Ctrl-C in a terminal sends)
    while two worker processes embed clips. No traceback from the run or its workers, exit status 130."""
    before = served_files(served_model)
    argv = whisper_argv(corpora, served_model, tmp_path / "run", tmp_path / "cache")
    argv[argv.index("--workers") + 1] = "2"
    process = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, *argv], cwd=REPO, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for line in process.stderr:
            if line.strip() == "embedding":
                break
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130, rest
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "interrupted, nothing was replaced" in rest and "Traceback" not in rest and "KeyboardInterrupt" not in rest
    assert served_files(served_model) == before
