"""The command lines: ``python -m ser_core.predict`` and ``python -m ser_core.evaluate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audio_factory import SIX_EMOTIONS, make_ravdess, make_turev, speech_like, write_audio

from ser_core.evaluation import evaluate_cli

from ser_core.inference import predict_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
SR = 16_000


@pytest.fixture
def clips(tmp_path) -> dict[str, Path]:
    return {
        "good_wav": write_audio(tmp_path / "good.wav", speech_like(2.0, seed=1), SR),
        "long_flac": write_audio(tmp_path / "long.flac", speech_like(7.0, seed=2), SR),
        "not_audio": _write(tmp_path / "notes.wav", b"this is not audio at all"),
        "empty": _write(tmp_path / "empty.mp3", b""),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_predict_prints_one_line_per_file_and_fails_only_the_bad_ones(tiny_artifacts, clips, capsys):
    files = [clips["good_wav"], clips["not_audio"], clips["long_flac"], clips["empty"]]
    status = predict_cli.main([*map(str, files), "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 1
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(clips["good_wav"]), str(clips["long_flac"])]
    assert "notes.wav could not be decoded as audio" in err
    assert "empty.mp3 is empty" in err
    assert "Traceback" not in err


def test_predict_json_matches_the_predictor(tiny_artifacts, tiny_predictor, clips, capsys):
    status = predict_cli.main([str(clips["long_flac"]), "--json", "--artifacts", str(tiny_artifacts)])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip())
    expected = tiny_predictor.predict_file(clips["long_flac"])
    assert result["file"] == str(clips["long_flac"])
    assert result["top_emotion"] == expected.top_emotion
    assert result["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    assert len(result["windows"]) == len(expected.windows) >= 3  # 7 s in 3 s windows, 50 % overlap
    # the answer is a set of emotions (most likely first), the same rule for the clip and its timeline
    assert result["emotions"] == expected.emotions and result["emotions"][0] == expected.top_emotion
    assert result["coverage"] == 0.9
    assert all(window["emotions"] for window in result["windows"])
    assert all(segment["emotions"] for segment in result["segments"])


def test_predict_coverage_widens_the_set_and_a_bad_one_is_named(tiny_artifacts, clips, capsys):
    sizes = []
    for coverage in ("0.8", "0.95"):
        predict_cli.main([str(clips["long_flac"]), "--json", "--coverage", coverage, "--artifacts", str(tiny_artifacts)])
        sizes.append(len(json.loads(capsys.readouterr().out)["emotions"]))
    assert 1 <= sizes[0] <= sizes[1]
    with pytest.raises(SystemExit):
        predict_cli.main([str(clips["good_wav"]), "--coverage", "90", "--artifacts", str(tiny_artifacts)])
    assert "got '90'" in capsys.readouterr().err


def test_predict_threshold_turns_any_answer_uncertain(tiny_artifacts, clips, capsys):
    predict_cli.main([str(clips["good_wav"]), "--json", "--threshold", "1.0", "--artifacts", str(tiny_artifacts)])
    result = json.loads(capsys.readouterr().out)
    assert result["uncertain"] is True and result["label"] == "uncertain"


def test_predict_without_a_model_says_how_to_train(tmp_path, clips, capsys):
    status = predict_cli.main([str(clips["good_wav"]), "--artifacts", str(tmp_path / "nothing")])
    assert status == 2
    assert "python train.py" in capsys.readouterr().err


@pytest.fixture
def labelled_folder(tmp_path) -> Path:
    root = tmp_path / "labelled"
    for index, emotion in enumerate(("angry", "sad", "happy")):
        for take in range(2):
            write_audio(root / emotion / f"{emotion}{take}.wav", speech_like(1.5, seed=10 * index + take), SR)
    write_audio(root / "calm" / "ignored.wav", speech_like(1.0, seed=99), SR)
    _write(root / "sad" / "broken.wav", b"RIFF....WAVEfmt broken")
    return root


def test_evaluate_reports_metrics_and_ends_with_json(tiny_artifacts, tiny_predictor, labelled_folder, capsys):
    status = evaluate_cli.main(["--data", str(labelled_folder), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n"] == 6 and report["skipped"] == 1 and report["ignored_folders"] == ["calm"]
    assert "ignored folder 'calm'" in out and "broken.wav" in err
    truth = {"angry": 0, "sad": 5, "happy": 3}
    correct = sum(
        SIX_EMOTIONS.index(tiny_predictor.predict_file(path).top_emotion) == truth[emotion]
        for emotion in truth for path in sorted((labelled_folder / emotion).glob(f"{emotion}*.wav"))
    )
    assert report["accuracy"] == pytest.approx(correct / 6)
    assert sum(map(sum, report["confusion_matrix"])) == 6
    assert {"accuracy", "uar", "macro_f1", "n", "per_class"} <= report.keys()


def test_evaluate_refuses_a_folder_without_emotion_folders(tiny_artifacts, tmp_path, capsys):
    write_audio(tmp_path / "misc" / "a.wav", speech_like(1.0), SR)
    assert evaluate_cli.main(["--data", str(tmp_path), "--artifacts", str(tiny_artifacts)]) == 2
    assert "no audio files in emotion folders" in capsys.readouterr().err


def test_evaluate_reads_a_ravdess_folder(tiny_artifacts, tmp_path, capsys):
    make_ravdess(tmp_path, (7, 8), emotions=("angry", "sad", "calm", "surprised"), clips_per_emotion=1, seconds=1.0)
    status = evaluate_cli.main(["--data", str(tmp_path), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["n"] == 4 and report["ignored_folders"] == []
    assert f"reading {tmp_path} as ravdess: kept 4 clips, skipped 4 of other emotions" in out
    assert "ignored folder" not in out


def test_evaluate_reads_emotion_synonym_folders_and_calm_as(tiny_artifacts, tmp_path, capsys):
    for index, folder in enumerate(("fearful", "Happiness", "calm")):
        write_audio(tmp_path / folder / f"take{index}.wav", speech_like(1.0, seed=index), SR)
    status = evaluate_cli.main(["--data", str(tmp_path), "--json", "--artifacts", str(tiny_artifacts)])
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert status == 0 and report["n"] == 2 and report["ignored_folders"] == ["calm"]
    assert report["per_class"]["fear"]["support"] == 1 and report["per_class"]["happy"]["support"] == 1
    assert "--calm-as neutral" in out
    status = evaluate_cli.main(["--data", str(tmp_path), "--calm-as", "neutral", "--json",
                                "--artifacts", str(tiny_artifacts)])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0 and report["n"] == 3 and report["per_class"]["neutral"]["support"] == 1


def test_evaluate_lists_a_turev_folder_before_loading_the_model(tmp_path, capsys):
    make_turev(tmp_path / "turev", speakers=("1157",))
    status = evaluate_cli.main(["--data", str(tmp_path / "turev"), "--artifacts", str(tmp_path / "no_model")])
    out, err = capsys.readouterr()
    assert status == 2 and "as turev: kept 6 clips" in out and "2 calm clips not counted as neutral" in out
    assert "No trained model" in err
    status = evaluate_cli.main(["--data", str(tmp_path / "turev"), "--corpus", "tess",
                                "--artifacts", str(tmp_path / "no_model")])
    assert status == 2 and "no audio files of the six emotions" in capsys.readouterr().err
    assert evaluate_cli.main(["--data", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_runs_as_a_module(tiny_artifacts, clips):
    """The documented command, in a real subprocess: exit status and output, no traceback."""
    command = [sys.executable, "-m", "ser_core.predict", str(clips["good_wav"]), str(clips["not_audio"]),
               "--artifacts", str(tiny_artifacts)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 1
    assert done.stdout.startswith(str(clips["good_wav"]) + ": ")
    assert "could not be decoded" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------ Ogg Opus


def test_predict_reads_ogg_opus(tiny_artifacts, tiny_predictor, tmp_path, capsys):
    wave = speech_like(2.0, seed=3)
    paths = [write_audio(tmp_path / f"voice_note{suffix}", wave, SR) for suffix in (".opus", ".oga")]
    status = predict_cli.main([*map(str, paths), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0, err
    results = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["file"] for r in results] == list(map(str, paths))
    assert results[0]["probabilities"] == pytest.approx(tiny_predictor.predict_file(paths[0]).probabilities, abs=1e-6)


def test_evaluate_reads_folders_of_opus(tiny_artifacts, tmp_path, capsys):
    for index, emotion in enumerate(("angry", "sad")):
        write_audio(tmp_path / "notes" / emotion / f"take{index}.opus", speech_like(1.5, seed=index), SR)
        write_audio(tmp_path / "notes" / emotion / f"other{index}.oga", speech_like(1.5, seed=5 + index), SR)
    status = evaluate_cli.main(["--data", str(tmp_path / "notes"), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n"] == 4


def test_evaluate_reads_an_ased_folder_of_opus(tiny_artifacts, tmp_path, capsys):
    from audio_factory import make_ased

    make_ased(tmp_path / "ased", speakers=("01",), emotions=("angry", "sad"), sentences=("01",), seconds=1.5,
              speech=True)
    status = evaluate_cli.main(["--data", str(tmp_path / "ased"), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"reading {tmp_path / 'ased'} as ased: kept 2 clips" in out
    assert json.loads(out.strip().splitlines()[-1])["n"] == 2
